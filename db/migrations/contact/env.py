from db.migrations.env_common import run

run()
