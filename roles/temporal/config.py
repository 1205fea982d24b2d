"""The files roles/temporal writes on a host, computed from the profile."""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path

from gpuaas import secrets
from gpuaas.forwarding import LOOPBACK, Forward, forward_units
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret
from gpuaas.templating import render_template
from roles.temporal.settings import TemporalSettings

TEMPLATES = Path(__file__).parent / "templates"
UNIT = "/etc/systemd/system/temporal.service"
PROGRAM_LINK = "/usr/local/bin/temporal"
SERVER_LINK = "/usr/local/bin/temporal-server"
SQL_TOOL_LINK = "/usr/local/bin/temporal-sql-tool"
CONFIG_ROOT = "/etc/temporal"
CONFIG = f"{CONFIG_ROOT}/config/production.yaml"
ENV_FILE = f"{CONFIG_ROOT}/temporal.env"
SCHEMA_ROOT = "/opt/gpuaas/temporal-schema"
#: temporal-sql-tool's plugin for PostgreSQL 12 and later, and the schema directory that goes with it.
SQL_PLUGIN = "postgres12"
SCHEMA_FLAVOUR = "schema/postgresql/v12"


def settings_for(profile: Profile) -> TemporalSettings:
    return profile.services.temporal


def data_dir(settings: TemporalSettings) -> str:
    return posixpath.dirname(settings.db_file)


def password_ref(profile: Profile, database: str) -> str:
    return next(db.password for db in profile.services.postgres.databases if db.name == database)


def schema_dir(profile: Profile) -> str:
    """Where the release's source tarball unpacks (its top directory stripped), one per version."""
    return posixpath.join(SCHEMA_ROOT, profile.artifacts[settings_for(profile).schema_artifact].version)


def versioned_dir(profile: Profile, store: str) -> str:
    """The versioned schema of `store` (temporal or visibility) that update-schema walks."""
    return posixpath.join(schema_dir(profile), SCHEMA_FLAVOUR, store, "versioned")


def stores(settings: TemporalSettings) -> dict[str, str]:
    """Schema name -> database: the main store and the visibility store."""
    return {"temporal": settings.database, "visibility": settings.visibility_database}


def context(profile: Profile, node: Host) -> dict:
    settings = settings_for(profile)
    return {
        "settings": settings,
        "address": str(node.address),
        "loopback": LOOPBACK,
        "program": PROGRAM_LINK,
        "server": SERVER_LINK,
        "data_dir": data_dir(settings),
        "config_root": CONFIG_ROOT,
        "env_file": ENV_FILE,
        "postgres_port": profile.services.postgres.port,
        "plugin": SQL_PLUGIN,
    }


def templates(settings: TemporalSettings) -> dict[str, str]:
    """Remote path -> template of every non-secret file of the mode."""
    if settings.mode == "dev":
        return {UNIT: str(TEMPLATES / "temporal.service.j2")}
    return {CONFIG: str(TEMPLATES / "production.yaml.j2"), UNIT: str(TEMPLATES / "temporal-server.service.j2")}


#: Dev mode's forwarders of the frontend's gRPC and HTTP ports (server mode binds those ports itself).
FORWARD_NAMES = ("temporal-frontend", "temporal-http")


def forwards(profile: Profile, node: Host) -> list[Forward]:
    """Dev mode's frontend ports on the host's profile address (the embedded server listens on loopback
    only); none in server mode, whose frontend binds the profile address itself."""
    settings = settings_for(profile)
    if settings.mode != "dev":
        return []
    address, what = str(node.address), "Temporal frontend ({}): Temporal asks clients for no credentials.".format
    ports = ((FORWARD_NAMES[0], settings.port, "gRPC"), (FORWARD_NAMES[1], settings.http_port, "HTTP API"))
    return [Forward(name, address, port, "temporal.service", what(kind), "temporal") for name, port, kind in ports]


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    settings = settings_for(profile)
    if not settings.enabled:
        return {}
    data = context(profile, node)
    rendered = {path: render_template(template, data) for path, template in templates(settings).items()}
    for forward in forwards(profile, node):
        rendered |= forward_units(forward)
    return rendered


def environment_file(main: Secret, visibility: Secret) -> Secret:
    """The server's EnvironmentFile: both database passwords, read by the config template and by
    temporal-sql-tool."""
    return secrets.environment_file(
        "temporal", {"TEMPORAL_DB_PASSWORD": main, "TEMPORAL_VISIBILITY_DB_PASSWORD": visibility}
    )


def sql_tool(profile: Profile, node: Host, store: str, command: str) -> str:
    """temporal-sql-tool COMMAND against `store`'s database, its password read from the env file
    (temporal-sql-tool takes SQL_PASSWORD from the environment: it never shows on a command line)."""
    settings = settings_for(profile)
    database = stores(settings)[store]
    variable = "TEMPORAL_DB_PASSWORD" if store == "temporal" else "TEMPORAL_VISIBILITY_DB_PASSWORD"
    return (
        f'set -a && . {ENV_FILE} && set +a && SQL_PASSWORD="${variable}" {SQL_TOOL_LINK} '
        f"--plugin {SQL_PLUGIN} --ep {node.address} -p {profile.services.postgres.port} -u {shlex.quote(database)} "
        f"--db {shlex.quote(database)} {command}"
    )


def health_command(settings: TemporalSettings, address: str) -> str:
    return f"{PROGRAM_LINK} operator cluster health --address {address}:{settings.port}"


def mode_label(profile: Profile) -> str:
    """What reports add to the role's title: the mode the profile runs it in."""
    return f"{settings_for(profile).mode} mode"
