"""The settings a command runs with: a configuration error names the setting, never its value."""

from __future__ import annotations

import click

from gateway.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a configuration error names the setting, never its value
        names = sorted({".".join(map(str, e["loc"])) for e in getattr(exc, "errors", list)()})
        raise click.ClickException(
            f"invalid configuration: {', '.join('GATEWAY_' + n.upper() for n in names)}"
        ) from None
