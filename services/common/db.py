"""PostgreSQL plumbing: one pool per service schema, and ordered, locked migrations.

Each service owns one schema. Its pool pins `search_path` to that schema, so service SQL never
names the schema and two services (or two tests) cannot touch each other's tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from services.common import schema_sql

if TYPE_CHECKING:
    Conn: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    )
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:  # real classes at run time, so frameworks that read annotations (Litestar DI) resolve them
    Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
    Pool = asyncpg.Pool
"""`Conn`: a connection, pooled or not: what every function that joins a transaction takes."""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: Conn) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> Pool:
    """A pool whose connections see `schema` first and decode JSON columns to Python values."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": check_schema_name(schema)},
        init=_init_connection,
    )
    assert pool is not None
    return pool


def common_migrations() -> list[Migration]:
    """The event store, outbox and inbox tables every service schema has."""
    return [Migration(1, "event store, outbox, inbox", schema_sql.COMMON_V1)]


async def migrate(pool: Pool, schema: str, migrations: Sequence[Migration]) -> list[int]:
    """Create `schema` if needed and apply pending migrations in order; returns those applied.

    An advisory lock serialises concurrent starters (two replicas booting at once).
    """
    check_schema_name(schema)
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError("migration versions must be unique and ascending")
    applied: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]
            for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        }
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        for m in migrations:
            if m.version in done:
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name
            )
            applied.append(m.version)
    return applied
