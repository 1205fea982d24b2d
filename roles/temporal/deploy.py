"""Deploy of roles/temporal: dev mode (the temporal CLI's embedded server) or server mode
(temporal-server on PostgreSQL, its schema kept current with temporal-sql-tool)."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Directory
from pyinfra.operations import files, server

from filters.jinja import jinja_env_kwargs
from gpuaas import artifacts
from gpuaas.context import current_node, current_profile
from gpuaas.forwarding import LOOPBACK, forwarded, unforwarded
from gpuaas.operations import install_pinned, secret_file, service_account, service_running
from gpuaas.probe import in_place
from gpuaas.profile import Host, Profile
from gpuaas.secrets import resolve
from roles.temporal.config import (
    ENV_FILE,
    FORWARD_NAMES,
    PROGRAM_LINK,
    SCHEMA_ROOT,
    SERVER_LINK,
    SQL_TOOL_LINK,
    context,
    data_dir,
    environment_file,
    forwards,
    health_command,
    password_ref,
    schema_dir,
    settings_for,
    sql_tool,
    stores,
    templates,
    versioned_dir,
)
from roles.temporal.facts import TemporalNamespaces, TemporalSchema
from roles.temporal.settings import TemporalSettings
from roles.temporal.state import probes


@deploy("Temporal")
def temporal() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    # The pins are verified on the controller first: a mismatch stops the deploy before any operation.
    if settings.mode == "dev" and in_place("Temporal", probes(profile, node)):
        return
    changed = [install_pinned(profile, settings.artifact, PROGRAM_LINK)]
    if settings.mode == "server":
        changed += [
            install_pinned(profile, settings.server_artifact, SERVER_LINK),
            install_pinned(profile, settings.sql_tool_artifact, SQL_TOOL_LINK),
        ]
    service_account("temporal", home=data_dir(settings), private_dirs=(data_dir(settings),))
    if settings.mode == "server":
        changed.append(_server_configuration(profile, node, settings))

    data, rendered = context(profile, node), {}
    for path, template in templates(settings).items():
        rendered[path] = files.template(
            name=f"Ensure {path} is rendered",
            src=template,
            dest=path,
            user="root",
            group="temporal",
            mode="640" if path.endswith(".yaml") else "644",
            jinja_env_kwargs=jinja_env_kwargs(),
            **data,
        )
    unit = rendered.pop("/etc/systemd/system/temporal.service")
    wanted = {forward.name for forward in forwards(profile, node)}
    for name in FORWARD_NAMES:
        if name not in wanted:  # dev mode's, left from before server mode: the server binds the ports itself
            unforwarded(name)
    # Dev mode's server answers on loopback; its forwarders listen once it no longer holds every address.
    health_address = LOOPBACK if settings.mode == "dev" else str(node.address)
    ready = f"{health_command(settings, health_address)} 2>/dev/null | grep -q SERVING"
    service_running(
        "temporal",
        changed=[*changed, *rendered.values(), unit],
        unit=unit,
        ready=ready,
        seconds=120 if settings.mode == "server" else 60,
    )
    for forward in forwards(profile, node):
        forwarded(forward)
    if settings.mode == "server":
        _namespaces(settings, str(node.address))


def _server_configuration(profile: Profile, node: Host, settings: TemporalSettings):
    """The database credentials and current schemas server mode needs; returns the credentials' operation."""
    credentials = secret_file(
        name=f"Ensure {ENV_FILE} holds the database credentials",
        path=ENV_FILE,
        mode="640",
        group="temporal",
        secret=environment_file(
            resolve(profile, password_ref(profile, settings.database)),
            resolve(profile, password_ref(profile, settings.visibility_database)),
        ),
    )
    archive = artifacts.verified(settings.schema_artifact, profile.artifacts[settings.schema_artifact])
    target, source = schema_dir(profile), f"{SCHEMA_ROOT}/{archive.name}"
    files.put(
        name=f"Ensure the Temporal schema source {archive.name} is on the host",
        src=str(archive),
        dest=source,
        mode="644",
        create_remote_dir=True,
    )
    q_target, q_new, q_source = shlex.quote(target), shlex.quote(f"{target}.new"), shlex.quote(source)
    server.shell(
        name=f"Ensure the Temporal schema is unpacked in {target}",
        commands=[
            f"mkdir -p {q_new} && tar -xzf {q_source} -C {q_new} --strip-components=1 && rm -rf {q_target} "
            f"&& mv {q_new} {q_target}"
        ],
        _if=lambda: not host.get_fact(Directory, path=versioned_dir(profile, "temporal")),
    )
    for store, database in stores(settings).items():
        directory = versioned_dir(profile, store)
        server.shell(
            name=f"Ensure the {database} database schema is current (temporal-sql-tool)",
            commands=[
                f"{{ {sql_tool(profile, node, store, 'setup-schema -v 0.0')} ; }} 2>/dev/null; "
                f"{sql_tool(profile, node, store, f'update-schema -d {shlex.quote(directory)}')}"
            ],
            _if=lambda database=database, directory=directory: _schema_behind(database, directory),
        )
    return credentials


def _schema_behind(database: str, directory: str) -> bool:
    schema = host.get_fact(TemporalSchema, database=database, versioned_dir=directory)
    return schema["current"] is None or schema["current"] != schema["available"]


def _namespaces(settings: TemporalSettings, address: str) -> None:
    """Server mode registers the namespaces itself (dev mode's server takes them as flags)."""
    endpoint = f"{address}:{settings.port}"
    for namespace in settings.namespaces:
        server.shell(
            name=f"Ensure namespace {namespace} is registered",
            commands=[
                f"{PROGRAM_LINK} operator namespace create --namespace {shlex.quote(namespace)} "
                f"--address {shlex.quote(endpoint)}"
            ],
            _if=lambda namespace=namespace: (
                namespace not in host.get_fact(TemporalNamespaces, program=PROGRAM_LINK, address=endpoint)
            ),
        )
