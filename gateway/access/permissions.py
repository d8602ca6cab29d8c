"""Field permissions and personal-data reads: a field names the scope it needs where it is
declared, so reading a schema module tells who may read what.

Without the scope a nullable field comes back null with a FORBIDDEN error naming the scope;
fields the schema marks as masked (a national ID as 008****948) answer masked instead.
Every personal datum actually served is noted for the audit trail (gateway/access/audit.py), under
the operation that served it: the operations of a batch each account for their own.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, ClassVar

from strawberry.permission import BasePermission

from gateway.access.principals import Scope
from gateway.errors import Forbidden

__all__ = [
    "PersonalReads",
    "Scope",
    "mask_national_code",
    "note_personal_read",
    "operation_reads",
    "personal_data_served",
    "requires",
]

# (subject type, subject id) → the field that first served it, in one operation.
PersonalReads = dict[tuple[str, str], str]

# The reads of the operation running in this task. A batch runs each operation in a task of
# its own over one shared Context, so the request's Context cannot tell them apart.
_operation_reads: ContextVar[PersonalReads | None] = ContextVar("operation_reads", default=None)


class _Requires(BasePermission):
    scope: ClassVar[str]

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return info.context.principal.has(self.scope)  # type: ignore[no-any-return]

    def on_unauthorized(self) -> None:
        raise Forbidden(f"This field needs the {self.scope} scope.", scope=self.scope)


@functools.cache
def requires(scope: str) -> type[BasePermission]:
    """The permission class for one scope: `permission_classes=[requires(Scope.X)]`."""
    name = "Requires" + "".join(part.title() for part in scope.replace(":", "_").split("_"))
    return type(name, (_Requires,), {"scope": scope})


def mask_national_code(code: str) -> str:
    """Enough to tell two people apart in a list, not enough to identify one."""
    return f"{code[:3]}****{code[-3:]}"


@contextlib.contextmanager
def operation_reads() -> Iterator[PersonalReads]:
    """Collects the personal reads of the operation run inside it (and of its resolvers'
    tasks, which inherit the context)."""
    reads: PersonalReads = {}
    token = _operation_reads.set(reads)
    try:
        yield reads
    finally:
        _operation_reads.reset(token)


def personal_data_served() -> bool:
    """Whether the running operation has served personal data so far (its answer must not be
    kept in the response cache: each serving is audited)."""
    return bool(_operation_reads.get())


def note_personal_read(info: Any, subject_type: str, subject_id: object) -> None:
    """Remember that this operation served personal data of a subject, for the audit trail.

    A person is the subject "Person" under their national ID, whichever path served them.
    Outside an operation nothing could account for the read, so it raises rather than serve
    personal data unaudited.
    """
    reads = _operation_reads.get()
    if reads is None:
        raise RuntimeError("personal data served outside an audited operation")
    key = (subject_type, str(subject_id))
    if key not in reads:
        reads[key] = f"{info._raw_info.parent_type.name}.{info.field_name}"
