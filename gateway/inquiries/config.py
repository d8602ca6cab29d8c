"""Inquiries' configuration from the gateway's settings: the kinds with their timing, the
checks' thresholds, the signing keys, and the addresses answers and letters name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.inquiries.keys import KeySet, SigningConfig, load_key_set
from gateway.inquiries.kinds import InquiriesConfig, InquiryKind, KindTiming, inquiry_kinds
from gateway.inquiries.rules import ChecksConfig
from gateway.inquiries.tracking import format_tracking_code
from gateway.inquiries.workdays import Deadline, Workweek
from gateway.settings import Settings

STATUS_LIST_PATH = "/inquiries/status-list"
JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class InquirySettings:
    kinds: Mapping[str, InquiryKind]
    checks: ChecksConfig
    keys: KeySet
    issuer: str  # the answers' `iss`: the municipality's code
    municipality: str  # its name, at the head of letters and verification pages
    public_url: str  # this gateway as the public reaches it, without a trailing slash

    @property
    def status_uri(self) -> str:
        """Where the status list every answer names is published."""
        return f"{self.public_url}{STATUS_LIST_PATH}"

    def verification_url(self, tracking_code: str) -> str:
        """The short address printed under a letter's QR code: the public verification page."""
        return f"{self.public_url}/v/{tracking_code}"

    def letter_url(self, tracking_code: str) -> str:
        return f"{self.public_url}/inquiries/{tracking_code}/letter"

    def printable_code(self, tracking_code: str) -> str:
        return format_tracking_code(tracking_code)


def _build(settings: Settings) -> InquirySettings:
    timing = KindTiming(
        validity=dt.timedelta(days=settings.inquiry_validity_days),
        manual_deadline=Deadline.working_days(settings.inquiry_manual_deadline_days),
    )
    checks = ChecksConfig(certificate_max_age_years=settings.inquiry_certificate_max_age_years)
    config = InquiriesConfig(
        default_timing=timing,
        workweek=Workweek(holidays=frozenset(settings.inquiry_holidays)),
        checks=checks,
    )
    keys = load_key_set(
        SigningConfig(
            signing_keys=tuple(key.get_secret_value() for key in settings.inquiry_signing_keys),
            signing_key_files=tuple(settings.inquiry_signing_key_files),
            retired_keys=tuple(settings.inquiry_retired_keys),
            development=settings.development,
            data_dir=settings.data_dir,
        )
    )
    return InquirySettings(
        kinds=inquiry_kinds(config),
        checks=checks,
        keys=keys,
        issuer=settings.municipality_code,
        municipality=settings.municipality_name,
        public_url=settings.public_url.rstrip("/"),
    )


# By identity: settings objects are not hashable, and each is built once per process.
_BUILT: dict[int, tuple[Settings, InquirySettings]] = {}


def inquiry_settings(settings: Settings) -> InquirySettings:
    """The inquiries' configuration for `settings`, built once per settings object (keys are
    read from files and parsed once, not on every request)."""
    found = _BUILT.get(id(settings))
    if found is not None and found[0] is settings:
        return found[1]
    built = _build(settings)
    if len(_BUILT) >= 64:  # tests build many settings; a process uses one
        _BUILT.clear()
    _BUILT[id(settings)] = (settings, built)
    return built
