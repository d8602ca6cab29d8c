"""Field permissions and personal-data reads: a field names the scope it needs where it is
declared, so reading a schema module tells who may read what.

Without the scope a nullable field comes back null with a FORBIDDEN error naming the scope;
fields the schema marks as masked (a national ID as 008****948) answer masked instead.
Every personal datum actually served is noted for the audit trail (gateway/audit.py).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from strawberry.permission import BasePermission

from gateway.errors import Forbidden
from gateway.principals import Scope

__all__ = ["Scope", "mask_national_code", "note_personal_read", "requires"]


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


def note_personal_read(info: Any, subject_type: str, subject_id: object) -> None:
    """Remember that this request served personal data of a subject, for the audit trail."""
    key = (subject_type, str(subject_id))
    if key not in info.context.personal_reads:
        info.context.personal_reads[key] = f"{info._raw_info.parent_type.name}.{info.field_name}"
