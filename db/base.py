"""One declarative base per database, so each keeps its own metadata and migrations."""

from __future__ import annotations

from sqlalchemy import BigInteger, MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names, so migrations are identical on SQLite, PostgreSQL and MariaDB.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money is integer rials everywhere; amounts exceed 32 bits easily.
Rials = BigInteger


class PlanningBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RevenueBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class GatewayBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ContactBase(DeclarativeBase):
    """The contact centre's database (مرکز ۱۳۷): services catalogue and citizen requests."""

    metadata = MetaData(naming_convention=NAMING)
