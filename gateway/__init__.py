"""A GraphQL integration gateway over a municipality's department databases and agencies."""
