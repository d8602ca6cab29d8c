"""A second cache tier for agency answers, shared by every gateway process (Redis).

Each AgencyGuard keeps its own in-process TTL cache; an agency whose answers are worth
sharing (long TTLs, answers many processes ask for: the postal company's addresses) also
reads and writes this tier, so that an answer one process fetched serves the others until
its TTL ends. Answers travel as JSON through each operation's declared type (pydantic's
TypeAdapter over our frozen dataclasses): nothing is unpickled, and a stored value that does
not read back as that type is a miss. Keys are SHA-256 digests of the request (a national ID
or a postal code never appears in a key).

The store itself (`SharedStore`) is given by the application (gateway/shared.py: Redis); when
it fails, a look-up misses and a write is skipped, so the agency is asked as without it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

__all__ = ["SharedStore", "SharedTier"]

logger = logging.getLogger(__name__)


class SharedStore(Protocol):
    """Bytes under string keys with a TTL; misses (None) rather than raises when down."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...


class SharedTier:
    """One agency's part of the shared cache: the operations it shares, with their answers'
    types (`None` is a valid answer: "the agency has none")."""

    def __init__(self, store: SharedStore, agency: str, types: Mapping[str, Any]) -> None:
        self.store = store
        self.agency = agency
        self._adapters: dict[str, TypeAdapter[Any]] = {
            operation: TypeAdapter(answer | None) for operation, answer in types.items()
        }

    def shares(self, operation: str) -> bool:
        return operation in self._adapters

    def key(self, operation: str, key: Hashable) -> str:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        return f"agency:{self.agency}:{operation}:{digest}"

    async def get(self, operation: str, key: Hashable) -> tuple[bool, Any]:
        data = await self.store.get(self.key(operation, key))
        if data is None:
            return False, None
        try:
            return True, self._adapters[operation].validate_json(data)
        except ValidationError:
            logger.warning("a shared %s.%s answer did not read back", self.agency, operation)
            return False, None

    async def put(self, operation: str, key: Hashable, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        data = self._adapters[operation].dump_json(value)
        await self.store.put(self.key(operation, key), data, ttl_s)
