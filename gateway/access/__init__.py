"""Who is calling and what they may see: principals and their scopes, authentication, API
keys, field permissions, row-level rules and the audit trail."""
