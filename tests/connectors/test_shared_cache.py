"""The shared tier of the agency caches (connectors/shared_cache.py) behind AgencyGuard: asked
after the process's own cache misses, told each answer fetched, read back through the
operation's type; a failing or unreadable store is a miss. And its Redis store
(gateway/shared.py) against a real Redis, and against none."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from decimal import Decimal

import pytest
from pydantic import SecretStr

from connectors.postal import GET_ADDRESS, PostalAddress
from connectors.resilience import AgencyGuard, AgencyPolicy
from connectors.shared_cache import SharedTier
from connectors.soap.land_registry import GET_DEED, Deed, DeedOwner, Plate
from gateway.access.authentication import AuthenticationFailed, Authenticator
from gateway.settings import Settings
from gateway.shared import RedisStore, agency_store
from tests.conftest import redis_url

ADDRESS = PostalAddress("5715793114", "آذربایجان غربی", "ارومیه", 3, "خیابان امام", 37.55, 45.07)
POLICY = AgencyPolicy(timeout_s=1.0, retries=0, cache_ttl_s=60.0)


class Store:
    """A SharedStore in memory, as another process's Redis would look."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, float] = {}

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self.data[key] = value
        self.ttls[key] = ttl_s


def _guard(store: Store) -> AgencyGuard:
    tier = SharedTier(store, "postal", {GET_ADDRESS: PostalAddress})
    return AgencyGuard("postal", POLICY, shared=tier)


async def test_an_answer_one_guard_fetched_serves_another_guard_without_a_call() -> None:
    store = Store()
    calls: list[str] = []

    async def fetch() -> PostalAddress:
        calls.append("agency")
        return ADDRESS

    one, two = _guard(store), _guard(store)  # two processes, one Redis
    assert await one.call(GET_ADDRESS, "5715793114", fetch) == ADDRESS
    assert await two.call(GET_ADDRESS, "5715793114", fetch) == ADDRESS
    assert calls == ["agency"]
    (key,) = store.data
    assert "5715793114" not in key  # keys are digests: no identifier in Redis's keys
    assert store.ttls[key] == POLICY.cache_ttl_s
    # Another key is asked of the agency.
    await two.call(GET_ADDRESS, "5715793115", fetch)
    assert calls == ["agency", "agency"]


async def test_none_is_shared_as_an_answer_and_garbage_is_a_miss() -> None:
    store = Store()
    answers: list[PostalAddress | None] = [None, ADDRESS]

    async def fetch() -> PostalAddress | None:
        return answers.pop(0)

    assert await _guard(store).call(GET_ADDRESS, "1", fetch) is None
    assert await _guard(store).call(GET_ADDRESS, "1", fetch) is None  # "none", from the tier
    assert answers == [ADDRESS]
    for key in store.data:
        store.data[key] = b'{"postal_code": 12}'  # not an address: read as a miss
    assert await _guard(store).call(GET_ADDRESS, "1", fetch) == ADDRESS


async def test_nested_answers_read_back_as_their_types() -> None:
    deed = Deed(
        plate=Plate(20, 130, 207),
        serial="123456",
        issued_on=dt.date(2019, 5, 1),
        area=Decimal("212.50"),
        owners=(DeedOwner("0084575948", "علی", "رضایی", Decimal("6")),),
        mortgages=(),
        seizures=(),
    )
    tier = SharedTier(Store(), "land_registry", {GET_DEED: Deed})
    await tier.put(GET_DEED, deed.plate, deed, 60)
    assert await tier.get(GET_DEED, deed.plate) == (True, deed)


async def test_answers_of_operations_not_shared_stay_out_of_the_tier() -> None:
    store = Store()
    tier = SharedTier(store, "postal", {})
    guard = AgencyGuard("postal", POLICY, shared=tier)

    async def fetch() -> PostalAddress:
        return ADDRESS

    await guard.call(GET_ADDRESS, "1", fetch)
    assert store.data == {}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_redis_that_cannot_be_reached_is_a_miss() -> None:
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", "gwtest:")
    guard = AgencyGuard(
        "postal", POLICY, shared=SharedTier(store, "postal", {GET_ADDRESS: PostalAddress})
    )
    calls: list[str] = []

    async def fetch() -> PostalAddress:
        calls.append("agency")
        return ADDRESS

    assert await guard.call(GET_ADDRESS, "1", fetch) == ADDRESS
    assert calls == ["agency"]


async def test_the_redis_store_shares_bytes_under_its_prefix() -> None:
    assert agency_store(Settings()) is None  # without Redis: no shared tier
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379 (CI has one)")
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    store = agency_store(Settings(redis_url=SecretStr(url), redis_key_prefix=prefix))
    assert store is not None
    assert await store.get("a") is None
    await store.put("a", b"\x00answer", 60)
    other = RedisStore(url, prefix)  # another process
    assert await other.get("a") == b"\x00answer"
    ttl = await other.client.pttl(prefix + "a")
    assert 0 < ttl <= 60_000
    await other.client.delete([prefix + "a"])


async def test_the_failed_authentication_throttle_lets_attempts_through_without_redis() -> None:
    """Shared through Redis (gateway/shared.py); when Redis is down a wrong credential is
    still a plain authentication failure, never an error of the gateway's."""
    settings = Settings(
        redis_url=SecretStr(f"redis://127.0.0.1:{_closed_port()}/0"), auth_failures_per_ip="1/hour"
    )
    authenticator = Authenticator(settings, databases=None)  # type: ignore[arg-type]
    for _ in range(3):  # past the limit: nothing could count the failures
        with pytest.raises(AuthenticationFailed):
            await authenticator.authenticate("Bearer not-a-key", "10.0.0.9")
