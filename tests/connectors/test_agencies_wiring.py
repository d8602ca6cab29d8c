"""Agencies as the app builds them: configuration, call records, statistics, and secrets that
never show up in an exception, a repr or a log record."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import httpx
import pytest

from connectors.agencies import AGENCY_NAMES, DEFAULT_POLICIES, Agencies, AgencyConfig
from connectors.errors import AgencyError
from connectors.resilience import CallRecord, current_request_id
from connectors.soap.land_registry import Plate
from sandbox.wsse import DEMO_PASSWORDS

SECRET = "s3cret-Passw0rd-that-must-not-leak"


def test_a_config_keeps_its_password_out_of_repr() -> None:
    config = AgencyConfig("bank", "http://bank.test/", "gateway", SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert config.effective_policy == DEFAULT_POLICIES["bank"]


@pytest.mark.parametrize(
    ("url", "username", "password", "message"),
    [
        (f"http://gateway:{SECRET}@bank.test/", None, None, "not the url"),
        ("ftp://bank.test/", None, None, "http"),
        ("bank.test", None, None, "http"),
        ("http://bank.test/", "gateway", None, "both"),
    ],
)
def test_a_config_refuses_credentials_in_the_url_and_half_credentials(
    url: str, username: str | None, password: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        AgencyConfig("bank", url, username, password)
    assert SECRET not in str(caught.value)


def test_default_policies_follow_what_each_agency_is_for() -> None:
    assert set(DEFAULT_POLICIES) == set(AGENCY_NAMES)
    for policy in DEFAULT_POLICIES.values():
        assert 2.0 <= policy.timeout_s <= 3.0
        assert policy.retries == 2
        assert (policy.breaker_failure_threshold, policy.breaker_reset_s) == (5, 10.0)
        assert 16 <= policy.max_concurrency <= 32
    ttl = {name: policy.cache_ttl_s for name, policy in DEFAULT_POLICIES.items()}
    assert ttl == {
        "land_registry": 300.0,
        "civil_registry": 3600.0,
        "bank": 600.0,
        "postal": 86_400.0,
    }


def test_agencies_need_every_agency_configured(agency_http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="civil_registry, bank, postal"):
        Agencies({"land_registry": AgencyConfig("land_registry", "http://lr.test/")}, agency_http)
    configs = {name: AgencyConfig(name, f"http://{name}.test/") for name in AGENCY_NAMES}
    configs["bank"] = dataclasses.replace(configs["bank"], soap_version="1.2")
    with pytest.raises(ValueError, match=r"SOAP 1\.1 only"):
        Agencies(configs, agency_http)


async def test_every_call_is_recorded_with_the_request_id_and_counted(
    make_agencies: Any,
) -> None:
    records: list[CallRecord] = []
    agencies = make_agencies(on_call=records.append)
    token = current_request_id.set("req-77")
    try:
        await agencies.land_registry.deed(Plate(11, 125, 102))
        await agencies.land_registry.deed(Plate(11, 125, 102))
        await agencies.postal.address("5715000001")
    finally:
        current_request_id.reset(token)
    assert [(r.agency, r.operation, r.outcome, r.attempts) for r in records] == [
        ("land_registry", "GetDeed", "ok", 1),
        ("land_registry", "GetDeed", "cached", 0),
        ("postal", "GetAddress", "ok", 1),
    ]
    assert {r.request_id for r in records} == {"req-77"}
    stats = {s.name: s for s in agencies.stats()}
    assert list(stats) == list(AGENCY_NAMES)
    assert (stats["land_registry"].calls, stats["land_registry"].cache_hits) == (2, 1)
    assert stats["bank"].calls == 0


async def test_credentials_never_appear_in_errors_reprs_or_logs(
    make_agencies: Any,
    rogue: str,
    chaos: Any,
    quick_policy: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [SECRET, *DEMO_PASSWORDS.values()]
    policy = quick_policy(timeout_s=0.5)
    good = make_agencies(land_registry={"policy": policy}, civil_registry={"policy": policy})
    wrong = make_agencies(
        civil_registry={"password": SECRET, "policy": policy},
        land_registry={"password": SECRET, "policy": policy, "url": f"{rogue}/malformed"},
        bank={"password": SECRET, "policy": policy, "url": f"{rogue}/html-error"},
    )
    errors: list[BaseException] = []

    async def attempt(call: Any) -> None:
        try:
            await call
        except AgencyError as exc:
            errors.append(exc)

    await good.land_registry.deeds([Plate(11, 125, n) for n in range(100, 110)])
    await good.civil_registry.person("1234567891")
    await attempt(wrong.civil_registry.person("1234567891"))
    await attempt(wrong.land_registry.deed(Plate(11, 125, 102)))
    await attempt(wrong.bank.verify_payment("REF-1"))
    await chaos("land_registry", down=True)
    await attempt(good.land_registry.deed(Plate(11, 125, 1)))
    assert len(errors) == 4

    texts = [repr(good), repr(wrong), repr(good.land_registry), repr(wrong.bank)]
    texts += [repr(config) for config in wrong.configs.values()]
    for error in errors:
        cause: BaseException | None = error
        while cause is not None:
            texts += [str(cause), repr(cause)]
            cause = cause.__cause__ or cause.__context__
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert caplog.records, "expected some DEBUG logging to inspect"
    for secret in secrets:
        assert not any(secret in text for text in texts)
