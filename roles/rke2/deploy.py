"""Deploy of roles/rke2: the pinned release, config.yaml, tokens, registries, manifests, the unit,
and a bounded wait until the node is ready."""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas.context import current_node, current_profile
from gpuaas.inventory import pyinfra_name
from gpuaas.operations import secret_file
from gpuaas.profile import Host, Profile
from roles.rke2.checks import api_ready, node_ready, wait
from roles.rke2.config import (
    CIS_SYSCTL,
    CONFIG,
    IMAGES,
    MANIFESTS,
    PREFIX,
    PROGRAM,
    TOKEN_FILE,
    first_server,
    is_server,
    join_credentials,
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


@deploy("RKE2")
def rke2() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile, node)
    release = verified_release(profile, settings)
    version = release_version(profile, settings)
    rendered = rendered_files(profile, node)
    if settings.cis:
        _cis_host(node, rendered[CIS_SYSCTL])
    installed = _install(settings, node, release, version)
    changed = [installed, *_configuration(profile, node, settings, rendered)]
    _running(node, settings, changed)


def _cis_host(node: Host, sysctl_text: str) -> None:
    """What the CIS profile checks before RKE2 starts: the kernel parameters, and an etcd account on servers."""
    sysctls = files.put(
        name=f"Ensure {CIS_SYSCTL} holds the CIS kernel parameters",
        src=StringIO(sysctl_text),
        dest=CIS_SYSCTL,
        mode="644",
    )
    server.shell(
        name="Ensure the CIS kernel parameters are applied",
        commands=[f"sysctl -p {CIS_SYSCTL}"],
        _if=sysctls.did_change,
    )
    if is_server(node):
        server.group(name="Ensure group etcd exists", group="etcd", system=True)
        server.user(
            name="Ensure account etcd exists",
            user="etcd",
            group="etcd",
            system=True,
            shell="/sbin/nologin",
            create_home=False,
        )


def _staged(local: Path, directory: str, what: str, mode: str = "600") -> str:
    """Upload a verified release file into the host's staging directory; returns its path there."""
    path = f"{directory}/{local.name}"
    files.put(name=f"Ensure {what} is on the host", src=str(local), dest=path, mode=mode, create_remote_dir=True)
    return path


def _install(settings: Rke2Settings, node: Host, release: dict[str, Path], version: str):
    """The pinned version under /usr/local, unpacked by the role (tarball) or by the pinned install script
    from the same verified files, with nothing downloaded on the host (script); returns the install op."""
    wanted = lambda: host.get_fact(Rke2Version, program=PROGRAM) != version  # noqa: E731
    directory = f"{STAGING}/{version}"
    tarball = _staged(release["artifact"], directory, f"the RKE2 {version} tarball")
    if "images_artifact" in release:
        images = release["images_artifact"]
        files.put(
            name=f"Ensure {images.name} is where RKE2 imports images",
            src=str(images),
            dest=f"{IMAGES}/{images.name}",
            mode="600",
            create_remote_dir=True,
        )
    if settings.install_method == "script":
        _staged(release["checksums_artifact"], directory, f"the RKE2 {version} checksum file")
        script = _staged(release["script_artifact"], directory, "the pinned RKE2 install script", mode="700")
        # INSTALL_RKE2_ARTIFACT_PATH: the script takes the verified tarball and checksum file from there
        # and downloads nothing.
        environment = {
            "INSTALL_RKE2_ARTIFACT_PATH": directory,
            "INSTALL_RKE2_VERSION": version,
            "INSTALL_RKE2_TYPE": kind(node),
            "INSTALL_RKE2_METHOD": "tar",
            "INSTALL_RKE2_TAR_PREFIX": PREFIX,
        }
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in environment.items())
        return server.shell(
            name=f"Ensure RKE2 {version} is installed (pinned install script)",
            commands=[f"env {assignments} sh {shlex.quote(script)}"],
            _if=wanted,
        )
    return server.shell(
        name=f"Ensure RKE2 {version} is installed under {PREFIX}",
        commands=[f"tar xzf {shlex.quote(tarball)} -C {PREFIX} && systemctl daemon-reload"],
        _if=wanted,
    )


def _configuration(profile: Profile, node: Host, settings: Rke2Settings, rendered: dict[str, str]) -> list:
    """Tokens, registries, the S3 drop-in, config.yaml and (servers) manifests, and the removal of what the
    role wrote before and is no longer asked to; returns what restarts RKE2."""
    changed = [
        secret_file(name=f"Ensure {path} holds the join token", path=path, secret=value)
        for path, value in token_files(profile, node).items()
    ]
    if (credentials := join_credentials(profile, node)) is not None:
        user, secret = credentials
        changed.append(
            join_token_file(
                name=f"Ensure {TOKEN_FILE} holds the secure token that verifies the server",
                path=TOKEN_FILE,
                ca_host=pyinfra_name(profile, first_server(profile)),
                user=user,
                secret=secret,
            )
        )
    private = secret_files(profile, node)
    for path, value in private.items():
        changed.append(secret_file(name=f"Ensure {path} is current", path=path, secret=value))
    changed.append(
        files.put(
            name=f"Ensure {CONFIG} is rendered",
            src=StringIO(rendered[CONFIG]),
            dest=CONFIG,
            mode="600",
            create_remote_dir=True,
        )
    )
    if is_server(node):
        # The servers apply these themselves (like `kubectl apply`): no restart needed.
        for path in manifests(settings):
            files.put(
                name=f"Ensure manifest {path.rsplit('/', 1)[1]} is in place",
                src=StringIO(rendered[path]),
                dest=path,
                mode="600",
                create_remote_dir=True,
            )
    return changed + _withdrawn(set(rendered) | set(private))


def _withdrawn(wanted: set[str]) -> list:
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


def _running(node: Host, settings: Rke2Settings, changed: list) -> None:
    """Start (or, after a change, restart) the unit, then wait a bounded time for the node to be ready."""
    unit = f"rke2-{kind(node)}"
    was_running = host.get_fact(SystemdStatus).get(f"{unit}.service", False)
    started = systemd.service(name=f"Ensure {unit} is running and enabled", service=unit, running=True, enabled=True)
    restarted = (
        systemd.service(
            name=f"Ensure {unit} runs with its configuration", service=unit, restarted=True, _if=any_changed(*changed)
        )
        if was_running
        else started
    )
    seconds = settings.ready_timeout
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
