"""Migration chatter — alembic's steps, the job engine's system-database migrations — is
logged only when asked (`gateway --verbose`, or GATEWAY_LOG_MIGRATIONS=true): every
`gateway` command migrates its databases first, and a reader wants the command's own output.
Warnings and errors from either always pass."""

from __future__ import annotations

import logging
import re

# Whose INFO lines are chatter: alembic's, and DBOS's about its own schema and database.
_ALEMBIC = "alembic"
_DBOS = "dbos"
_DBOS_CHATTER = re.compile(r"schema migration|system database", re.IGNORECASE)


class _Chatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        if record.name == _ALEMBIC or record.name.startswith(_ALEMBIC + "."):
            return False
        return not _DBOS_CHATTER.search(record.getMessage())


_FILTER = _Chatter()


def quiet_migrations(show: bool = False) -> None:
    """Drops migration chatter from this process's logs (or, with `show`, lets it through).
    Filters on the loggers themselves, so they hold whatever handlers are set up later."""
    for name in (_ALEMBIC, "alembic.runtime.migration", _DBOS):
        logger = logging.getLogger(name)
        logger.removeFilter(_FILTER)
        if not show:
            logger.addFilter(_FILTER)
