"""Everything roles/postgres keeps on a data host, declared once: the deploy converges it and the
one-round-trip check reads it back (see gpuaas.managed)."""

from __future__ import annotations

from pyinfra import host

from gpuaas.managed import Checked, Item, Packages, SecretFile, Service, Template
from gpuaas.profile import Host, Profile
from roles.postgres.config import ROLES_SQL, context, paths, profile_roles_sql, settings_for, templates
from roles.postgres.facts import PSQL, MemoryMB
from roles.postgres.settings import PostgresSettings


def unit_name(profile: Profile) -> str:
    return f"postgresql@{settings_for(profile).version}-main"


def databases_owned(settings: PostgresSettings) -> Checked:
    """Each database owned by the login role of its name: one row per database when all are in place.
    The deploy's own step creates them (from ROLES_SQL)."""
    names = ", ".join(f"'{db.name}'" for db in settings.databases)
    owned = (
        f"SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba AND r.rolname = d.datname "
        f"AND r.rolcanlogin WHERE d.datname IN ({names})"
    )
    return Checked(
        f"databases {' '.join(db.name for db in settings.databases)}",
        f'{PSQL} -p {settings.port} -c "{owned}"',
        str(len(settings.databases)),
    )


def desired(profile: Profile, node: Host) -> list[Item]:
    """On the current host: the tuning follows its memory."""
    settings = settings_for(profile)
    where, sources = paths(settings), templates()
    data = context(profile, node, host.get_fact(MemoryMB))
    conf = Template(where["conf"], sources["conf"], data, mode="644", user="postgres", group="postgres")
    hba = Template(where["hba"], sources["hba"], data, mode="640", user="postgres", group="postgres")
    sql = SecretFile(
        ROLES_SQL,
        profile_roles_sql(profile),
        mode="600",
        user="postgres",
        group="postgres",
        what="the roles and databases",
    )
    ready = f"runuser -u postgres -- pg_isready -q -p {settings.port}"
    return [
        Packages((f"postgresql-{settings.version}",)),
        conf,
        hba,
        # The access rules are reloaded, not restarted for: the deploy's own step.
        Service(unit_name(profile), ready=ready, restart_on=(conf,)),
        sql,
        databases_owned(settings),
    ]
