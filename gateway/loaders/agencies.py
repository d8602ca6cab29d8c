"""The land registry's batch look-up of deeds; other agencies go through AgencyLoader."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.soap.land_registry import Deed, LandRegistry, Plate
from gateway.loaders.batching import GatedLoader


class DeedsByPlate(GatedLoader[Plate, Deed | None]):
    """The land registry's batch operation: one call (or a few) for a whole page of parcels."""

    def __init__(self, land_registry: LandRegistry) -> None:
        super().__init__()
        self.land_registry = land_registry

    async def batch_load_fn(self, keys: Sequence[Plate]) -> list[Deed | None]:
        deeds = await self.land_registry.deeds(keys)
        return [deeds.get(plate) for plate in keys]
