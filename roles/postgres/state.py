"""The whole desired state of roles/postgres as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

from pyinfra import host

from gpuaas.probe import Probe, owned_files_probe, packages_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.postgres.config import ROLES_SQL, paths, profile_roles_sql, rendered_files, settings_for
from roles.postgres.facts import PSQL, MemoryMB


def unit_name(profile: Profile) -> str:
    return f"postgresql@{settings_for(profile).version}-main"


def probes(profile: Profile, node: Host) -> list[Probe]:
    """On the current host: the tuning follows its memory."""
    settings, sql = settings_for(profile), profile_roles_sql(profile)
    where, rendered = paths(settings), rendered_files(profile, node, host.get_fact(MemoryMB))
    names = ", ".join(f"'{db.name}'" for db in settings.databases)
    # Each database owned by the login role of its name: one row per database when all are in place.
    owned = (
        f"SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba AND r.rolname = d.datname "
        f"AND r.rolcanlogin WHERE d.datname IN ({names})"
    )
    return [
        packages_probe([f"postgresql-{settings.version}"]),
        owned_files_probe(
            "files",
            {
                where["conf"]: (rendered[where["conf"]], "644", "postgres", "postgres"),
                where["hba"]: (rendered[where["hba"]], "640", "postgres", "postgres"),
                ROLES_SQL: (sql.reveal(), "600", "postgres", "postgres"),
            },
        ),
        services_probe(running=[unit_name(profile)], enabled=[unit_name(profile)]),
        Probe("databases", f'{PSQL} -p {settings.port} -c "{owned}"', str(len(settings.databases))),
    ]
