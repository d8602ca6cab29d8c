"""API keys changed through GraphQL: a principal revokes one of its own keys (a mutation), and
hears when one of its keys is revoked, through GraphQL or by an operator on the CLI (a
subscription)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from gateway.access import keys
from gateway.access.permissions import Scope, requires
from gateway.context import Info
from gateway.schema.access import ApiKey
from gateway.schema.mutation import change


@strawberry.type
class KeysMutation:
    @strawberry.mutation(
        description="Revokes one of the caller's own API keys, named by its prefix (the 12 hex "
        "digits after gw_), e.g. a compromised one: NOT_FOUND for a key that is not the "
        "caller's, CONFLICT for one revoked already. Audited; the holder's apiKeyRevoked "
        "subscriptions hear it.",
        permission_classes=[requires(Scope.KEYS_READ)],
    )
    async def revoke_api_key(
        self,
        info: Info,
        prefix: Annotated[
            str, strawberry.argument(description="The key's prefix: the 12 hex digits after gw_.")
        ],
    ) -> ApiKey | None:
        async with change(info) as unit:
            revoked = await keys.revoke_own_key(unit.session, info.context.principal, prefix)
            unit.audit(keys.KEYS_REVOKE, "ApiKey", revoked.id)
            unit.announce(*keys.revocation_notice(revoked))
        return ApiKey.from_domain(revoked)


@strawberry.type
class KeysSubscription:
    @strawberry.subscription(
        description="The caller's own API keys as each is revoked, through revokeApiKey or by "
        "an operator (gateway keys revoke).",
        permission_classes=[requires(Scope.KEYS_READ)],
    )
    async def api_key_revoked(self, info: Info) -> AsyncGenerator[ApiKey, None]:
        context = info.context
        principal = context.principal
        async for notice in context.events.listen(
            keys.KEY_REVOKED, keys.holder_audience(principal)
        ):
            # The event names the key; the row rule decides, now, what the listener sees.
            async with context.databases.session("gateway") as session:
                key = await keys.visible_key(session, principal, notice.key_id)
            if key is not None:
                yield ApiKey.from_domain(key)
