"""A real `gateway run` over freshly seeded demo databases, with the simulated agencies and an
API key for every kind of caller that examples/ names: what the example operations and the
graphql-http audit run against, as a front-end team's client would (HTTP on loopback)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from db.engines import Databases
from gateway.access.keys import parse_kind
from sandbox.run import run_agencies
from tests.conftest import AGENCY_SECRETS, Backend, gateway_process, make_backend, mint_key

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Which key each folder of examples/ runs with: folder → kind as `gateway keys create` takes it.
CALLERS: dict[str, str] = json.loads((EXAMPLES / "callers.json").read_text(encoding="utf-8"))
# A bank's organisation is its bank code: the demo bank (Bank Melli) is 017.
ORGANISATIONS = {"bank": "017"}


@dataclass(frozen=True)
class ExampleGateway:
    address: str  # host:port
    backend: Backend
    keys: dict[str, str]  # kind label (`notary`, `department:revenue`, …) → API key

    @property
    def url(self) -> str:
        return f"http://{self.address}/graphql"

    async def mint(self, label: str) -> tuple[str, str]:
        """Another key for the principal of `label`: (its prefix, the key)."""
        databases = Databases({"gateway": self.backend.urls["gateway"]})
        try:
            kind, department = parse_kind(label)
            info, key = await mint_key(
                databases,
                kind,
                _name(label),
                department,
                organisation=ORGANISATIONS.get(label),
            )
        finally:
            await databases.dispose()
        return info.prefix, key


def _name(label: str) -> str:
    return f"Examples {label}"


@contextlib.asynccontextmanager
async def example_gateway(tmp: Path) -> AsyncIterator[ExampleGateway]:
    backend, _ = await make_backend("sqlite", tmp)
    async with run_agencies(
        planning_url=backend.urls["planning"],
        revenue_url=backend.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as agencies:
        env = {}
        for agency in ("land_registry", "civil_registry", "bank", "postal"):
            env[f"GATEWAY_{agency.upper()}_URL"] = agencies.url(agency)
        for agency, credentials in AGENCY_SECRETS.items():
            env[f"GATEWAY_{agency.upper()}_USERNAME"] = credentials.username
            env[f"GATEWAY_{agency.upper()}_PASSWORD"] = credentials.password
        async with gateway_process(backend, env) as address:
            made = ExampleGateway(address, backend, {})
            for label in sorted(set(CALLERS.values())):
                made.keys[label] = (await made.mint(label))[1]
            yield made
