"""roles/postgres: tuning, access rules and the roles SQL, computed without a host."""

from __future__ import annotations

from gpuaas.profile import load_profile
from gpuaas.secrets import Secret
from roles.postgres.config import paths, rendered_files, roles_sql, tuning
from roles.postgres.facts import PostgresObjects
from roles.postgres.settings import PostgresSettings


def test_tuning_follows_host_memory():
    figures = tuning(PostgresSettings(), 16384)
    assert (figures.shared_buffers_mb, figures.effective_cache_size_mb) == (4096, 12288)
    assert figures.maintenance_work_mem_mb == 1024
    assert tuning(PostgresSettings(), 65536).maintenance_work_mem_mb == 2048
    assert tuning(PostgresSettings(), 512).shared_buffers_mb == 128


def test_access_rules_limit_each_database_to_its_owner_and_the_cluster():
    staging = load_profile("staging")
    settings = staging.services.postgres
    hba = rendered_files(staging, staging.host("stg-server-1"))[paths(settings)["hba"]]
    rules = [line.split() for line in hba.splitlines() if line.startswith("host ") and "scram" in line]
    networks = {rule[3] for rule in rules if rule[1] != "all"}
    assert networks == {"10.20.0.0/24", "10.42.0.0/16"}
    assert all(rule[1] == rule[2] for rule in rules if rule[1] != "all")
    assert {rule[1] for rule in rules} == {"all", "platform", "temporal", "temporal_visibility", "keycloak"}
    assert "trust" not in hba and " md5" not in hba


def test_roles_sql_is_a_secret_and_quotes_passwords():
    settings = PostgresSettings()
    passwords = {db.name: Secret(db.name, f"pw'{db.name}") for db in settings.databases}
    sql = roles_sql(settings, passwords)
    assert "pw'" not in repr(sql)
    text = sql.reveal()
    assert "ALTER ROLE platform WITH LOGIN PASSWORD 'pw''platform';" in text
    assert "CREATE DATABASE keycloak OWNER keycloak" in text and "\\gexec" in text


def test_objects_fact_sorts_roles_and_databases():
    objects = PostgresObjects().process(["role:platform", "database:platform", "database:postgres"])
    assert objects == {"roles": ["platform"], "databases": ["platform", "postgres"]}
