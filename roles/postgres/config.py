"""The files roles/postgres writes on a host, computed from the profile and host memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from gpuaas.templating import render_template
from roles.postgres.settings import PostgresSettings

TEMPLATES = Path(__file__).parent / "templates"
#: Host memory `render` assumes, since it contacts no host (the deploy reads the real figure).
RENDER_MEMORY_MB = 16384
#: The SQL that keeps the roles and databases (it holds their passwords: readable by postgres only, 0600).
ROLES_SQL = "/var/lib/postgresql/gpuaas-roles.sql"


@dataclass(frozen=True)
class Tuning:
    shared_buffers_mb: int
    effective_cache_size_mb: int
    maintenance_work_mem_mb: int
    work_mem_mb: int


def settings_for(profile: Profile) -> PostgresSettings:
    return profile.services.postgres


def paths(settings: PostgresSettings) -> dict[str, str]:
    base = f"/etc/postgresql/{settings.version}/main"
    return {"conf": f"{base}/conf.d/90-gpuaas.conf", "hba": f"{base}/pg_hba.conf"}


def tuning(settings: PostgresSettings, memory_mb: int) -> Tuning:
    """The usual starting points: shared_buffers a quarter of memory, the cache estimate three
    quarters, maintenance memory a sixteenth (at most 2 GB), work_mem split across connections."""
    shared = int(memory_mb * settings.shared_buffers_share)
    return Tuning(
        shared_buffers_mb=max(shared, 128),
        effective_cache_size_mb=max(int(memory_mb * settings.effective_cache_share), 256),
        maintenance_work_mem_mb=min(max(memory_mb // 16, 64), 2048),
        work_mem_mb=max((memory_mb - shared) // (settings.max_connections * 3), 4),
    )


def networks(profile: Profile) -> list[str]:
    """Where logins may come from: the nodes and the pods of the cluster."""
    return [str(profile.network.node_cidr), str(profile.network.cluster_cidr)]


def context(profile: Profile, node: Host, memory_mb: int) -> dict:
    settings = settings_for(profile)
    return {
        "settings": settings,
        "address": str(node.address),
        "memory_mb": memory_mb,
        "tuning": asdict(tuning(settings, memory_mb)),
        "rules": [(db.name, network) for db in settings.databases for network in networks(profile)],
    }


def templates() -> dict[str, str]:
    return {"conf": str(TEMPLATES / "gpuaas.conf.j2"), "hba": str(TEMPLATES / "pg_hba.conf.j2")}


def rendered_files(profile: Profile, node: Host, memory_mb: int = RENDER_MEMORY_MB) -> dict[str, str]:
    """Every non-secret file of the role on `node` (the SQL with the passwords is never rendered)."""
    settings = settings_for(profile)
    data = context(profile, node, memory_mb)
    where = paths(settings)
    return {where[kind]: render_template(template, data) for kind, template in templates().items()}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def profile_roles_sql(profile: Profile) -> Secret:
    """roles_sql for the profile's databases and their passwords."""
    settings = settings_for(profile)
    return roles_sql(settings, {db.name: resolve(profile, db.password) for db in settings.databases})


def roles_sql(settings: PostgresSettings, passwords: dict[str, Secret]) -> Secret:
    """Idempotent SQL that creates each owner role and database and sets the role's password.
    A Secret: it holds the passwords, so it travels like one and is run from a file, never a command line."""
    lines = ["\\set ON_ERROR_STOP on"]
    for database in settings.databases:
        name, password = database.name, passwords[database.name].reveal()
        lines += [
            f"SELECT 'CREATE ROLE {name} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
            f"{_literal(name)})\\gexec",
            f"ALTER ROLE {name} WITH LOGIN PASSWORD {_literal(password)};",
            f"SELECT 'CREATE DATABASE {name} OWNER {name}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE "
            f"datname = {_literal(name)})\\gexec",
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;",
        ]
    return Secret("postgres roles", "\n".join(lines) + "\n")
