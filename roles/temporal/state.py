"""Everything roles/temporal keeps on a data host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed). Dev mode: the temporal CLI's embedded server behind its forwarded
frontend ports. Server mode: temporal-server on PostgreSQL, its schema kept current with temporal-sql-tool
and its namespaces registered by the deploy's own steps."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import Directory
from pyinfra.operations import server

from gpuaas import artifacts
from gpuaas.forwarding import LOOPBACK
from gpuaas.managed import (
    Account,
    Applied,
    Checked,
    Forwarded,
    Item,
    PinnedProgram,
    SecretFile,
    Service,
    Template,
    Unforwarded,
    Upload,
)
from gpuaas.probe import Probe
from gpuaas.profile import Host, Profile
from gpuaas.secrets import resolve
from roles.temporal.config import (
    ENV_FILE,
    FORWARD_NAMES,
    PROGRAM_LINK,
    SCHEMA_ROOT,
    SERVER_LINK,
    SQL_TOOL_LINK,
    UNIT,
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
from roles.temporal.facts import TemporalSchema
from roles.temporal.settings import TemporalSettings


@dataclass(eq=False)
class SchemaUnpacked:
    """The release's schema directory unpacked from its source tarball, once per version: into a
    directory beside it first, so a half-done unpack is never taken for the schema."""

    target: str
    source: str
    #: A directory only a whole unpack leaves (the main store's versioned schema).
    marker: str

    @property
    def name(self) -> str:
        return f"schema {self.target}"

    def probes(self) -> list[Probe]:
        command = f"test -d {shlex.quote(self.marker)} && echo unpacked || echo missing"
        return [Probe(self.name, command, "unpacked")]

    def apply(self, applied: Applied) -> OperationMeta:
        q_target, q_new, q_source = (
            shlex.quote(self.target),
            shlex.quote(f"{self.target}.new"),
            shlex.quote(self.source),
        )
        return server.shell(
            name=f"Ensure the Temporal schema is unpacked in {self.target}",
            commands=[
                f"mkdir -p {q_new} && tar -xzf {q_source} -C {q_new} --strip-components=1 && rm -rf {q_target} "
                f"&& mv {q_new} {q_target}"
            ],
            _if=lambda: not host.get_fact(Directory, path=self.marker),
        )


@dataclass(eq=False)
class SchemaCurrent:
    """A store's database at the newest version of its versioned schema (temporal-sql-tool's
    setup-schema on an empty database, then update-schema)."""

    database: str
    directory: str
    #: The temporal-sql-tool commands that set up and update the schema (their password from the env file).
    setup: str
    update: str

    @property
    def name(self) -> str:
        return f"schema of {self.database}"

    def probes(self) -> list[Probe]:
        # What TemporalSchema reads, compared on the host: the recorded version against the newest there is.
        query = shlex.quote(f"SELECT curr_version FROM schema_version WHERE db_name = '{self.database}'")
        command = (
            f"c=$(runuser -u postgres -- psql -XAtq -d {shlex.quote(self.database)} -c {query} 2>/dev/null); "
            f"a=$(ls {shlex.quote(self.directory)} 2>/dev/null | sed -n 's/^v//p' | sort -V | tail -n 1); "
            'if [ -n "$c" ] && [ "$c" = "$a" ]; then echo current; else echo "behind ${c:-none} ${a:-none}"; fi'
        )
        return [Probe(self.name, command, "current")]

    def apply(self, applied: Applied) -> OperationMeta:
        return server.shell(
            name=f"Ensure the {self.database} database schema is current (temporal-sql-tool)",
            commands=[f"{{ {self.setup} ; }} 2>/dev/null; {self.update}"],
            _if=self._behind,
        )

    def _behind(self) -> bool:
        schema = host.get_fact(TemporalSchema, database=self.database, versioned_dir=self.directory)
        return schema["current"] is None or schema["current"] != schema["available"]


def desired(profile: Profile, node: Host) -> list[Item]:
    settings = settings_for(profile)
    server_mode = settings.mode == "server"
    # The pins are verified on the controller first: a mismatch stops the deploy before any operation.
    programs = [PinnedProgram(profile, settings.artifact, PROGRAM_LINK)]
    if server_mode:
        programs += [
            PinnedProgram(profile, settings.server_artifact, SERVER_LINK),
            PinnedProgram(profile, settings.sql_tool_artifact, SQL_TOOL_LINK),
        ]
    account = Account("temporal", home=data_dir(settings), private_dirs=(data_dir(settings),))
    credentials = [_credentials(profile, settings)] if server_mode else []
    schema = _schema(profile, node, settings) if server_mode else []
    data = context(profile, node)
    rendered = [
        Template(path, template, data, mode="640" if path.endswith(".yaml") else "644", group="temporal")
        for path, template in templates(settings).items()
    ]
    unit = next(item for item in rendered if item.path == UNIT)
    forwarders = [Forwarded(forward) for forward in forwards(profile, node)]
    wanted = {item.forward.name for item in forwarders}
    # Dev mode's, left from before server mode: the server binds the ports itself.
    unforwarders = [Unforwarded(name) for name in FORWARD_NAMES if name not in wanted]
    # Dev mode's server answers on loopback; its forwarders listen once it no longer holds every address.
    health_address = LOOPBACK if settings.mode == "dev" else str(node.address)
    service = Service(
        "temporal",
        ready=f"{health_command(settings, health_address)} 2>/dev/null | grep -q SERVING",
        restart_on=(*programs, *credentials, *rendered),
        unit_file=unit,
        seconds=120 if server_mode else 60,
    )
    registered = [_namespaces_registered(settings, str(node.address))] if server_mode else []
    return [*programs, account, *credentials, *schema, *rendered, *unforwarders, service, *forwarders, *registered]


def _credentials(profile: Profile, settings: TemporalSettings) -> SecretFile:
    """Server mode's database credentials, read by the server and by temporal-sql-tool."""
    return SecretFile(
        ENV_FILE,
        environment_file(
            resolve(profile, password_ref(profile, settings.database)),
            resolve(profile, password_ref(profile, settings.visibility_database)),
        ),
        mode="640",
        group="temporal",
        what="the database credentials",
    )


def _schema(profile: Profile, node: Host, settings: TemporalSettings) -> list[Item]:
    """The release's schema source, unpacked, and both stores' databases at its newest version: in place
    before the server starts, which refuses a database without its schema."""
    pin = profile.artifacts[settings.schema_artifact]
    archive = artifacts.verified(settings.schema_artifact, pin)
    source = Upload(
        f"{SCHEMA_ROOT}/{archive.name}", archive, pin.sha256, what=f"the Temporal schema source {archive.name}"
    )
    unpacked = SchemaUnpacked(schema_dir(profile), source.path, versioned_dir(profile, "temporal"))
    current = [
        SchemaCurrent(
            database,
            versioned_dir(profile, store),
            setup=sql_tool(profile, node, store, "setup-schema -v 0.0"),
            update=sql_tool(profile, node, store, f"update-schema -d {shlex.quote(versioned_dir(profile, store))}"),
        )
        for store, database in stores(settings).items()
    ]
    return [source, unpacked, *current]


def _namespaces_registered(settings: TemporalSettings, address: str) -> Checked:
    """Server mode's namespaces, registered by the deploy's steps once the server answers (dev mode's
    server takes them as flags)."""
    endpoint = shlex.quote(f"{address}:{settings.port}")
    describe = [
        f"{PROGRAM_LINK} operator namespace describe --namespace {shlex.quote(namespace)} --address {endpoint} "
        f"-o json >/dev/null 2>&1 && echo {shlex.quote(namespace)}"
        for namespace in settings.namespaces
    ]
    return Checked("namespaces", "; ".join([*describe, "true"]), " ".join(settings.namespaces))
