"""The department databases and the gateway's own: models, engines, migrations, demo data."""
