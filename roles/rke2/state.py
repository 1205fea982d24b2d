"""Everything roles/rke2 keeps on a server or agent host, declared once: the deploy converges it and the
one-round-trip check reads it back (see gpuaas.managed). With the CIS profile, the kernel parameters
and (servers) the etcd account; the verified release staged on the host and the pinned version
installed from it; the tokens, the private files, config.yaml and (servers) the manifests; no file the
role wrote and no longer writes; and the unit running, restarted when what it reads at start changed,
then waited for until the node is ready."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.server import Sysctl
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas.inventory import pyinfra_name
from gpuaas.managed import Applied, Content, Item, SecretFile, Upload
from gpuaas.probe import Probe, services_probe, sha1, sysctls_probe
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret
from roles.rke2.checks import api_ready, node_ready, wait
from roles.rke2.config import (
    CIS_SYSCTL,
    CIS_SYSCTLS,
    CONFIG,
    IMAGES,
    MANIFESTS,
    OPTIONAL_FILES,
    PREFIX,
    PROGRAM,
    REGISTRIES,
    S3_DROP_IN,
    TOKEN_FILE,
    first_server,
    is_server,
    join_credentials,
    join_url,
    kind,
    manifests,
    read_at_start,
    rendered_files,
    secret_files,
    settings_for,
    token_files,
)
from roles.rke2.facts import OptionalFiles, Rke2Version
from roles.rke2.operations import join_token_file, manifest_withdrawn
from roles.rke2.release import release_version, verified_release
from roles.rke2.settings import Rke2Settings

STAGING = "/var/lib/gpuaas/rke2"
#: What each private file holds, as the operation that writes it says.
PRIVATE_CONTENT = {REGISTRIES: "the registry configuration", S3_DROP_IN: "the etcd S3 options"}


@dataclass(eq=False)
class CisParameters:
    """The CIS kernel parameters live in the kernel, applied from `path` (which keeps them across boots)
    when `sysctl_file` changed it or the kernel holds other values."""

    path: str
    values: dict[str, str]
    sysctl_file: Item

    @property
    def name(self) -> str:
        return f"sysctls {self.path}"

    def probes(self) -> list[Probe]:
        probe = sysctls_probe(self.values)
        return [Probe(self.name, probe.command, probe.wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        written = applied.get(self.sysctl_file)
        return server.shell(
            name="Ensure the CIS kernel parameters are applied",
            commands=[f"sysctl -p {self.path}"],
            _if=lambda: (written is not None and written.did_change()) or self._differ(),
        )

    def _differ(self) -> bool:
        live = host.get_fact(Sysctl, keys=list(self.values))
        return any(str(live.get(key)) != value for key, value in self.values.items())


@dataclass(eq=False)
class EtcdAccount:
    """The system account and group etcd runs as under the CIS profile: no login shell, no home."""

    user: str = "etcd"

    @property
    def name(self) -> str:
        return f"account {self.user}"

    def probes(self) -> list[Probe]:
        # The account, its primary group (that group's own id) and its shell, from one awk over both files.
        command = (
            f'awk -F: -v u={shlex.quote(self.user)} \'FILENAME=="/etc/group" && $1==u {{g=$3}} '
            'FILENAME=="/etc/passwd" && $1==u && $4==g {print $1":"$7}\' /etc/group /etc/passwd'
        )
        return [Probe(self.name, command, f"{self.user}:/sbin/nologin")]

    def apply(self, applied: Applied) -> OperationMeta:
        server.group(name=f"Ensure group {self.user} exists", group=self.user, system=True)
        return server.user(
            name=f"Ensure account {self.user} exists",
            user=self.user,
            group=self.user,
            system=True,
            shell="/sbin/nologin",
            create_home=False,
        )


@dataclass(eq=False)
class Installed:
    """The pinned RKE2 `version` under PREFIX, from the files staged in `directory`: unpacked by the role
    (the tarball), or by the pinned install script (`script`) from the same verified files, with nothing
    downloaded on the host."""

    version: str
    directory: str
    tarball: str
    node_kind: str
    script: str | None = None

    @property
    def name(self) -> str:
        return f"installed {PROGRAM}"

    def probes(self) -> list[Probe]:
        command = Rke2Version().command(program=PROGRAM)
        return [Probe(self.name, command, rf"rke2 version {re.escape(self.version)}( .*)?", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        wanted = lambda: host.get_fact(Rke2Version, program=PROGRAM) != self.version  # noqa: E731
        if self.script is not None:
            # INSTALL_RKE2_ARTIFACT_PATH: the script takes the verified tarball and checksum file from there
            # and downloads nothing.
            environment = {
                "INSTALL_RKE2_ARTIFACT_PATH": self.directory,
                "INSTALL_RKE2_VERSION": self.version,
                "INSTALL_RKE2_TYPE": self.node_kind,
                "INSTALL_RKE2_METHOD": "tar",
                "INSTALL_RKE2_TAR_PREFIX": PREFIX,
            }
            assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in environment.items())
            return server.shell(
                name=f"Ensure RKE2 {self.version} is installed (pinned install script)",
                commands=[f"env {assignments} sh {shlex.quote(self.script)}"],
                _if=wanted,
            )
        return server.shell(
            name=f"Ensure RKE2 {self.version} is installed under {PREFIX}",
            commands=[f"tar xzf {shlex.quote(self.tarball)} -C {PREFIX} && systemctl daemon-reload"],
            _if=wanted,
        )


@dataclass(eq=False)
class JoinToken:
    """A joining node's secure token file, root's only: `K10<sha256 of the cluster CA>::USER:SECRET` (see
    roles.rke2.operations.join_token_file), USER being `joins_as`. The CA is the first server's; the
    probe hashes the one that server offers a joining node (`cacerts`) on the node itself, and compares
    the rest by digest, so the secret stays on the controller."""

    path: str
    ca_host: str
    cacerts: str
    joins_as: str
    secret: Secret
    mode: str = "600"

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def probes(self) -> list[Probe]:
        path = shlex.quote(self.path)
        # An unreachable server hashes as the empty file's sha256, which no token names.
        command = (
            f"stat -c '%a %U %G' {path}; "
            f"ca=$(curl -fsk --max-time 5 {shlex.quote(self.cacerts)} | sha256sum | cut -d ' ' -f 1); "
            f'sed -n "s/^K10$ca:://p" {path} | sha1sum'
        )
        wanted = f"{self.mode} root root {sha1(f'{self.joins_as}:{self.secret.reveal()}')} -"
        return [Probe(self.name, command, wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        return join_token_file(
            name=f"Ensure {self.path} holds the secure token that verifies the server",
            path=self.path,
            ca_host=self.ca_host,
            user=self.joins_as,
            secret=self.secret,
        )


@dataclass(eq=False)
class NoneWithdrawn:
    """No file the role wrote (its header) in the places of OPTIONAL_FILES that it no longer writes: each
    such file removed, a manifest with what it created in the cluster. Its operations' result is the
    list of removals RKE2 must restart for."""

    wanted: frozenset[str]

    @property
    def name(self) -> str:
        return "no withdrawn rke2 file"

    @property
    def listed(self) -> list[str]:
        """The wanted files the listing of the role's headered files holds, in byte order."""
        return sorted(path for path in self.wanted if any(fnmatchcase(path, p) for p in OPTIONAL_FILES))

    def probes(self) -> list[Probe]:
        command = f"{{ {OptionalFiles().command()} ; }} | LC_ALL=C sort"
        return [Probe(self.name, command, " ".join(self.listed))]

    def apply(self, applied: Applied) -> list[OperationMeta]:
        return _withdrawn(set(self.wanted))


def _withdrawn(wanted: set[str]) -> list[OperationMeta]:
    """Remove each file the role wrote (its header) that the settings no longer ask for; returns the
    removals RKE2 must restart for."""
    restart_for = []
    for path in host.get_fact(OptionalFiles):
        if path in wanted:
            continue
        if path.startswith(f"{MANIFESTS}/"):
            manifest_withdrawn(name=f"Ensure manifest {path.rsplit('/', 1)[1]} and what it created are gone", path=path)
            continue
        removed = files.file(name=f"Ensure {path} is gone (no longer configured)", path=path, present=False)
        if read_at_start(path):
            restart_for.append(removed)
    return restart_for


@dataclass(eq=False)
class NodeService:
    """rke2-server or rke2-agent running and enabled: started, or restarted when any of `restart_on`
    changed the host, then waited for (at most `seconds`) until the node is ready."""

    unit: str
    node: Host
    seconds: int
    restart_on: tuple[Item, ...] = ()

    @property
    def name(self) -> str:
        return f"service {self.unit}"

    def probes(self) -> list[Probe]:
        probe = services_probe(running=[self.unit], enabled=[self.unit])
        return [Probe(self.name, probe.command, probe.wanted, pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        changed: list[OperationMeta] = []
        for result in (applied.get(item) for item in self.restart_on):
            # NoneWithdrawn gives the list of its removals.
            changed += result if isinstance(result, list) else [result] if result is not None else []
        return _running(self.unit, self.node, self.seconds, changed)


def _running(unit: str, node: Host, seconds: int, changed: list[OperationMeta]) -> OperationMeta:
    """Start (or, after a change, restart) the unit, then wait a bounded time for the node to be ready;
    returns the start or restart."""
    was_running = host.get_fact(SystemdStatus).get(f"{unit}.service", False)
    started = systemd.service(name=f"Ensure {unit} is running and enabled", service=unit, running=True, enabled=True)
    restarted = (
        systemd.service(
            name=f"Ensure {unit} runs with its configuration", service=unit, restarted=True, _if=any_changed(*changed)
        )
        if was_running
        else started
    )
    if is_server(node):
        ready = f"{api_ready()} && {node_ready(node.name)}"
        what = "the API (/readyz) and the node"
    else:
        ready = "curl -s --max-time 2 http://127.0.0.1:10248/healthz | grep -qx ok"
        what = "the kubelet"
    server.shell(
        name=f"Wait for {unit} to be ready",
        commands=[
            wait(ready, seconds, f"{unit} on {node.name}: {what} not ready after {seconds}s; see journalctl -u {unit}")
        ],
        _if=any_changed(started, restarted),
    )
    return restarted


def staging(version: str) -> str:
    """Where the release of `version` is staged on the host."""
    return f"{STAGING}/{version}"


def cis_host(node: Host, sysctl_text: str) -> list[Item]:
    """What the CIS profile checks before RKE2 starts: the kernel parameters, and an etcd account on servers."""
    sysctls = Content(CIS_SYSCTL, sysctl_text, mode="644", what="the CIS kernel parameters")
    return [
        sysctls,
        CisParameters(CIS_SYSCTL, dict(CIS_SYSCTLS), sysctls),
        *([EtcdAccount()] if is_server(node) else []),
    ]


def staged_release(profile: Profile, settings: Rke2Settings, release: dict[str, Path], version: str) -> list[Item]:
    """The verified release files on the host (the tarball, the images where RKE2 imports them, and with
    the install script method the checksum file and the script), each with its pinned sha256."""
    names = settings.required_artifacts()
    directory = staging(version)

    def staged(setting: str, what: str, mode: str = "600") -> Upload:
        local = release[setting]
        return Upload(f"{directory}/{local.name}", local, profile.artifacts[names[setting]].sha256, mode, what=what)

    items: list[Item] = [staged("artifact", f"the RKE2 {version} tarball")]
    if "images_artifact" in release:
        images = release["images_artifact"]
        sha256 = profile.artifacts[names["images_artifact"]].sha256
        where = f"Ensure {images.name} is where RKE2 imports images"
        items.append(Upload(f"{IMAGES}/{images.name}", images, sha256, "600", operation=where))
    if settings.install_method == "script":
        items.append(staged("checksums_artifact", f"the RKE2 {version} checksum file"))
        items.append(staged("script_artifact", "the pinned RKE2 install script", mode="700"))
    return items


def configuration(profile: Profile, node: Host, settings: Rke2Settings, rendered: dict[str, str]) -> list[Item]:
    """Tokens, registries, the S3 drop-in, config.yaml and (servers) manifests, and no file the role wrote
    before and is no longer asked to."""
    private = secret_files(profile, node)
    items: list[Item] = [
        SecretFile(path, value, what="the join token") for path, value in token_files(profile, node).items()
    ]
    if (credentials := join_credentials(profile, node)) is not None:
        user, secret = credentials
        ca_host = pyinfra_name(profile, first_server(profile))
        items.append(JoinToken(TOKEN_FILE, ca_host, f"{join_url(profile)}/cacerts", user, secret))
    items += [
        SecretFile(path, value, what=PRIVATE_CONTENT.get(path, "its current content"))
        for path, value in private.items()
    ]
    items.append(
        Content(CONFIG, rendered[CONFIG], "600", operation=f"Ensure {CONFIG} is rendered", create_remote_dir=True)
    )
    if is_server(node):
        # The servers apply these themselves (like `kubectl apply`): no restart needed.
        items += [
            Content(
                path,
                rendered[path],
                "600",
                operation=f"Ensure manifest {path.rsplit('/', 1)[1]} is in place",
                create_remote_dir=True,
            )
            for path in manifests(settings)
        ]
    return [*items, NoneWithdrawn(frozenset(set(rendered) | set(private)))]


def desired(profile: Profile, node: Host) -> list[Item]:
    """Every item of the role on `node`. The release is verified on the controller first (its pins, then
    the release's own checksum file): a mismatch stops the deploy here, before any operation is queued."""
    settings = settings_for(profile, node)
    release = verified_release(profile, settings)
    version = release_version(profile, settings)
    rendered = rendered_files(profile, node)
    cis = cis_host(node, rendered[CIS_SYSCTL]) if settings.cis else []
    staged = staged_release(profile, settings, release, version)
    directory = staging(version)
    script = f"{directory}/{release['script_artifact'].name}" if settings.install_method == "script" else None
    installed = Installed(version, directory, f"{directory}/{release['artifact'].name}", kind(node), script)
    configured = configuration(profile, node, settings, rendered)
    # Manifests are applied while RKE2 runs; everything else it reads when it starts.
    restart_on = (installed, *(item for item in configured if not _manifest(item)))
    return [
        *cis,
        *staged,
        installed,
        *configured,
        NodeService(f"rke2-{kind(node)}", node, settings.ready_timeout, restart_on),
    ]


def _manifest(item: Item) -> bool:
    return isinstance(item, Content) and item.path.startswith(f"{MANIFESTS}/")
