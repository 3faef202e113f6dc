"""What every service that keeps records shares: the database, its migrations, pagination.

`database` opens an SQLite file or PostgreSQL and migrates one Alembic history
(`migrations.Migrations`); each service owns its tables and its history, so the registry
and delivery can live in one database or two. `pages` is the keyset pagination every
listing uses; `durable` writes files that survive a crash (the device agent uses it too).
"""
