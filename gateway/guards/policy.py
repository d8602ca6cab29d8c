"""Who may do what before execution: introspect, send unregistered documents, spend how much.

One function per question, each over the settings and the caller's kind, so that the answer
for every kind of caller reads at a glance.
"""

from __future__ import annotations

from gateway.access.principals import Principal
from gateway.settings import Settings


def may_introspect(settings: Settings, principal: Principal) -> bool:
    """Introspection and field suggestions: for everyone in development, else internal only."""
    return settings.development or principal.kind.internal


def trusted_documents_only(settings: Settings, principal: Principal) -> bool:
    return settings.env == "production" and principal.kind.partner


def cost_budget(settings: Settings, principal: Principal) -> int:
    if principal.kind.internal:
        return settings.cost_budget_internal
    if principal.kind.partner:
        return settings.cost_budget_partner
    return settings.cost_budget_public
