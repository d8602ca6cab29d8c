"""The gateway's one settings object, read from GATEWAY_* variables and an optional TOML file."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DATABASES = ("planning", "revenue", "gateway")


class Settings(BaseSettings):
    """Everything configurable; built once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        toml_file=os.environ.get("GATEWAY_CONFIG_FILE") or None,
        extra="forbid",
    )

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    data_dir: Path = Path(".data")
    planning_database_url: str | None = None
    revenue_database_url: str | None = None
    gateway_database_url: str | None = None
    database_echo: bool = False

    # Seeding on first run (development convenience; production seeds nothing).
    seed_parcels: int = Field(default=2000, ge=0)

    # Hardening limits, enforced before anything runs.
    max_query_depth: int = Field(default=12, ge=1)
    max_query_tokens: int = Field(default=2000, ge=10)
    max_aliases: int = Field(default=30, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the TOML file; secrets come only from the environment.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def development(self) -> bool:
        return self.env == "development"

    def database_url(self, name: str) -> str:
        """The URL of one of DATABASES; one SQLite file each under data_dir by default."""
        if name not in DATABASES:
            raise KeyError(name)
        url: str | None = getattr(self, f"{name}_database_url")
        if url:
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{name}.sqlite3').resolve()}"

    @cached_property
    def database_urls(self) -> dict[str, str]:
        return {name: self.database_url(name) for name in DATABASES}
