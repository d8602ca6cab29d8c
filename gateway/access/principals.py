"""Who is calling: the kinds of principal, their scopes, and the policy that grants them.

Policy lives here, apart from transport (gateway/access/authentication.py finds the
principal) and from the schema (permission classes on fields ask for scopes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class PrincipalKind(Enum):
    NOTARY = "notary"  # دفتر اسناد رسمی
    BANK = "bank"
    COUNTER = "counter"  # دفتر پیشخوان دولت
    DEPARTMENT = "department"  # an internal department: planning, revenue, 137, inspection…
    OPERATOR = "operator"  # runs the gateway
    # A federation router (a province's or the national exchange's): reads the subgraph's
    # SDL to compose it; data it fetches is asked under the end caller's own credential.
    ROUTER = "router"
    PUBLIC = "public"  # anonymous

    @property
    def partner(self) -> bool:
        return self in PARTNER_KINDS

    @property
    def internal(self) -> bool:
        return self in (PrincipalKind.DEPARTMENT, PrincipalKind.OPERATOR)


PARTNER_KINDS = frozenset({PrincipalKind.NOTARY, PrincipalKind.BANK, PrincipalKind.COUNTER})

DEPARTMENTS = (
    "planning",
    "revenue",
    "contact137",
    "inspection",
    "urban_services",
    "transport",
    # the services catalogue's other process owners (citizen requests, gateway/requests/)
    "green_space",
    "civil_works",
    "culture_social",
    "public_relations",
)


class Scope:
    """What a principal may read or do; fields and operations name the scope they need."""

    PARCELS_READ = "parcels:read"  # parcels, buildings, permits, certificates, violations
    DUES_READ = "dues:read"  # a parcel's dues
    PERSONAL_READ = "personal:read"  # national IDs, names, shares, deeds, civil records
    PAYMENTS_VERIFY = "payments:verify"
    AGENCIES_READ = "agencies:read"  # agency health, for operators
    AUDIT_READ = "audit:read"  # the whole audit trail (inspection, operators)
    KEYS_READ = "keys:read"  # one's own API keys
    INQUIRIES_ALL = "inquiries:all"  # every partner's inquiries (operators)
    INQUIRY_STATS_ALL = "inquiries:stats"  # every partner's inquiry figures (inspection)
    REQUESTS_ALL = "requests:all"  # every citizen request (operators, inspection)
    REQUESTS_READ = "requests:read"  # citizen requests about a parcel (departments, operators)
    CATALOGUE_WRITE = "catalogue:write"  # change the services catalogue (operators)
    FEDERATION_SDL = "federation:sdl"  # `_service { sdl }`: internal callers and routers


_PARTNER = frozenset({Scope.PARCELS_READ, Scope.DUES_READ, Scope.KEYS_READ})

SCOPES_BY_KIND: dict[PrincipalKind, frozenset[str]] = {
    # A notary checks owners, shares and the deed before a transfer.
    PrincipalKind.NOTARY: _PARTNER | {Scope.PERSONAL_READ},
    # A bank checks the property behind a mortgage and the payments made through it.
    PrincipalKind.BANK: _PARTNER | {Scope.PERSONAL_READ, Scope.PAYMENTS_VERIFY},
    # A counter serves the public: parcel facts and dues, no personal data.
    PrincipalKind.COUNTER: _PARTNER,
    PrincipalKind.DEPARTMENT: _PARTNER
    | {Scope.PERSONAL_READ, Scope.PAYMENTS_VERIFY, Scope.REQUESTS_READ, Scope.FEDERATION_SDL},
    PrincipalKind.OPERATOR: _PARTNER
    | {
        Scope.PERSONAL_READ,
        Scope.PAYMENTS_VERIFY,
        Scope.AGENCIES_READ,
        Scope.AUDIT_READ,
        Scope.INQUIRIES_ALL,
        Scope.INQUIRY_STATS_ALL,
        Scope.REQUESTS_ALL,
        Scope.REQUESTS_READ,
        Scope.CATALOGUE_WRITE,
        Scope.FEDERATION_SDL,
    },
    # A federation router composes the subgraph and reads nothing else on its own key.
    PrincipalKind.ROUTER: frozenset({Scope.FEDERATION_SDL}),
    # Anyone may look up a parcel and what is owed on it (as the citizen portal does by
    # renewal code); who owns it is personal.
    PrincipalKind.PUBLIC: frozenset({Scope.PARCELS_READ, Scope.DUES_READ}),
}

# Departments with more than every department has.
EXTRA_DEPARTMENT_SCOPES: dict[str, frozenset[str]] = {
    "inspection": frozenset({Scope.AUDIT_READ, Scope.INQUIRY_STATS_ALL, Scope.REQUESTS_ALL}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `id` is stable across its keys (or its JWT subject).

    `organisation` is what a rule needs to know about whom the caller belongs to: for a bank,
    its three-digit bank code (as in a Sheba number); None for other kinds.
    """

    kind: PrincipalKind
    id: str
    name: str
    department: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    organisation: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def partner_code(self) -> str | None:
        """The partner as its inquiries name it: its organisation (a bank's code) when it has
        one, so that every key of the organisation sees them, else the principal itself;
        None for callers that are not partners."""
        if not self.kind.partner:
            return None
        return self.organisation or f"{self.kind.value}:{self.id}"

    @property
    def label(self) -> str:
        """How logs and agencies name this caller (never a secret)."""
        if self.kind is PrincipalKind.DEPARTMENT:
            return f"department:{self.department}:{self.id}"
        return f"{self.kind.value}:{self.id}"


def scopes_for(kind: PrincipalKind, department: str | None = None) -> frozenset[str]:
    scopes = SCOPES_BY_KIND[kind]
    if kind is PrincipalKind.DEPARTMENT and department is not None:
        scopes |= EXTRA_DEPARTMENT_SCOPES.get(department, frozenset())
    return scopes


def may_verify_payment(principal: Principal, bank_code: str) -> bool:
    """A bank verifies only payments made through it (the reference starts with its bank
    code), so that it cannot probe other banks' customers; departments and operators any."""
    if not principal.has(Scope.PAYMENTS_VERIFY):
        return False
    if principal.kind is PrincipalKind.BANK:
        return principal.organisation is not None and principal.organisation == bank_code
    return True


ANONYMOUS = Principal(
    kind=PrincipalKind.PUBLIC,
    id="anonymous",
    name="the public",
    scopes=scopes_for(PrincipalKind.PUBLIC),
)
