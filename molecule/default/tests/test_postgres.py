"""Verify PostgreSQL on the local data host: each role logs in to its database over the network."""

from __future__ import annotations

import psycopg
import pytest

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve
from roles.postgres.facts import PostgresVersion
from tests.lane import lane_host

PROFILE = load_profile("local")
SETTINGS = PROFILE.services.postgres
DATA = PROFILE.group("data")[0]
HOST = lane_host(PROFILE, DATA.name)


def connect(database: str, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(
        host=str(DATA.address), port=SETTINGS.port, dbname=database, user=user, password=password, connect_timeout=5
    )


@pytest.mark.parametrize("database", SETTINGS.databases, ids=lambda d: d.name)
def test_each_role_queries_its_own_database(database):
    with connect(database.name, database.name, resolve(PROFILE, database.password).reveal()) as connection:
        user, name, version = connection.execute("SELECT current_user, current_database(), version()").fetchone()
    assert (user, name) == (database.name, database.name)
    assert version.startswith(f"PostgreSQL {SETTINGS.version}.")


def test_wrong_password_and_foreign_database_are_refused():
    owner = SETTINGS.databases[0]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(owner.name, owner.name, "not-the-password")
    other = SETTINGS.databases[1]
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        connect(other.name, owner.name, resolve(PROFILE, owner.password).reveal())


def test_passwords_stay_in_the_private_sql_file():
    sql = HOST.file("/var/lib/postgresql/gpuaas-roles.sql")
    assert (sql.mode, sql.user) == (0o600, "postgres")
    for database in SETTINGS.databases:
        password = resolve(PROFILE, database.password).reveal()
        for path in ("/etc/postgresql/15/main/conf.d/90-gpuaas.conf", "/etc/postgresql/15/main/pg_hba.conf"):
            assert password not in HOST.file(path).content_string


def test_version_readback():
    output = HOST.check_output(PostgresVersion().command(SETTINGS.port)).splitlines()
    assert PostgresVersion().process(output).startswith(f"PostgreSQL {SETTINGS.version}.")
