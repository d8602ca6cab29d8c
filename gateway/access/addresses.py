"""Callers' addresses: the one way the gateway names one, and the unit its limits count.

- `client_address(scope)` is the connection's peer, or what X-Forwarded-For says when that
  peer is a trusted proxy (uvicorn's ProxyHeadersMiddleware, added by the app for
  GATEWAY_TRUSTED_PROXIES, rewrites `scope["client"]` then): one canonical spelling per
  address, "unknown" when there is none. Logs, rate limits and every throttle use it.
- `limit_key(address)` is what a per-address limit counts: an IPv4 address, or the /64
  network of an IPv6 one. A subscriber is given a whole /64 and may use any of its 2**64
  addresses, so counting single IPv6 addresses would let one caller rotate past every limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

__all__ = ["IPV6_PREFIX", "UNKNOWN_ADDRESS", "client_address", "limit_key"]

UNKNOWN_ADDRESS = "unknown"
IPV6_PREFIX = 64


def client_address(scope: Mapping[str, Any]) -> str:
    """The caller's address: one canonical spelling per address, "unknown" when there is none
    (a Unix socket) or a trusted proxy forwarded something that is not an address."""
    client = scope.get("client")
    if not client:
        return UNKNOWN_ADDRESS
    try:
        return str(ipaddress.ip_address(client[0]))
    except ValueError:
        return UNKNOWN_ADDRESS


def limit_key(address: str) -> str:
    """The unit a per-address limit counts `address` under (see the module's docstring)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown": one shared window
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)
