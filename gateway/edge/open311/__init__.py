"""Open311 GeoReport v2 at /open311/v2/: the contact centre's catalogue and citizen requests
for the Open311 apps and libraries that already exist (gateway/edge/open311/).

- `formats.py`: XML and JSON documents, dates; `errors.py`: the specification's errors;
- `params.py`: what clients send (filters, the POSTed form); `documents.py`: what they get;
- `routes.py`: the addresses, who is calling, rate limits, and the handlers.
"""

from __future__ import annotations

from gateway.edge.open311.routes import PREFIX, Open311

__all__ = ["PREFIX", "Open311"]
