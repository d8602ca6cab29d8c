"""The gateway's own database (inquiries, partners, keys, audit); tables arrive with later work."""

from __future__ import annotations

from db.base import GatewayBase

__all__ = ["GatewayBase"]
