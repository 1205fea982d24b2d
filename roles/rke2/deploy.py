"""Deploy of roles/rke2: the pinned release, config.yaml, tokens, registries, manifests, the unit,
and a bounded wait until the node is ready."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas.context import current_node, current_profile
from gpuaas.operations import secret_file
from gpuaas.profile import Host, Profile
from roles.rke2.checks import api_ready, node_ready, wait
from roles.rke2.config import (
    CIS_SYSCTL,
    CONFIG,
    IMAGES,
    PREFIX,
    PROGRAM,
    REGISTRIES,
    S3_DROP_IN,
    etcd_s3_drop_in,
    is_server,
    kind,
    manifests,
    registries,
    rendered_files,
    settings_for,
    token_files,
)
from roles.rke2.facts import Rke2Version
from roles.rke2.release import verified_release
from roles.rke2.settings import Rke2Settings

STAGING = "/var/lib/gpuaas/rke2"


@deploy("RKE2")
def rke2() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile, node)
    release = verified_release(profile, settings)
    version = profile.artifacts[settings.artifact].version
    rendered = rendered_files(profile, node)
    if settings.cis:
        _cis_host(node, rendered[CIS_SYSCTL])
    installed = _install(settings, node, release, version)
    changed = [installed, *_configuration(profile, node, settings, rendered)]
    _running(node, settings, changed)


def _cis_host(node: Host, sysctl_text: str) -> None:
    """What the CIS profile checks before RKE2 starts: the kernel parameters, and an etcd account on servers."""
    sysctls = files.put(name=f"Ensure {CIS_SYSCTL} holds the CIS kernel parameters", src=StringIO(sysctl_text),
                        dest=CIS_SYSCTL, mode="644")  # fmt: skip
    server.shell(name="Ensure the CIS kernel parameters are applied", commands=[f"sysctl -p {CIS_SYSCTL}"],
                 _if=sysctls.did_change)  # fmt: skip
    if is_server(node):
        server.group(name="Ensure group etcd exists", group="etcd", system=True)
        server.user(name="Ensure account etcd exists", user="etcd", group="etcd", system=True,
                    shell="/sbin/nologin", create_home=False)  # fmt: skip


def _install(settings: Rke2Settings, node: Host, release: dict, version: str):
    """The pinned version under /usr/local (tarball) or through the install script; returns the install op."""
    wanted = lambda: host.get_fact(Rke2Version, program=PROGRAM) != version  # noqa: E731
    if settings.install_method == "script":
        return server.shell(
            name=f"Ensure RKE2 {version} is installed (install script)",
            commands=[f"curl -sfL {settings.script_url} | INSTALL_RKE2_VERSION={version} "
                      f"INSTALL_RKE2_TYPE={kind(node)} sh -"],
            _if=wanted,
        )  # fmt: skip
    tarball = release["artifact"]
    staged = f"{STAGING}/{version}/{tarball.name}"
    files.put(name=f"Ensure the RKE2 {version} tarball is on the host", src=str(tarball), dest=staged,
              mode="600", create_remote_dir=True)  # fmt: skip
    if "images_artifact" in release:
        images = release["images_artifact"]
        files.put(name=f"Ensure {images.name} is where RKE2 imports images", src=str(images),
                  dest=f"{IMAGES}/{images.name}", mode="600", create_remote_dir=True)  # fmt: skip
    return server.shell(
        name=f"Ensure RKE2 {version} is installed under {PREFIX}",
        commands=[f"tar xzf {staged} -C {PREFIX} && systemctl daemon-reload"],
        _if=wanted,
    )


def _configuration(profile: Profile, node: Host, settings: Rke2Settings, rendered: dict[str, str]) -> list:
    """Tokens, registries, the S3 drop-in, config.yaml and (servers) manifests; returns what restarts RKE2."""
    changed = [secret_file(name=f"Ensure {path} holds the join token", path=path, secret=value)
               for path, value in token_files(profile, node).items()]  # fmt: skip
    registry_file = registries(profile, settings)
    if registry_file is not None:
        changed.append(secret_file(name=f"Ensure {REGISTRIES} is current", path=REGISTRIES, secret=registry_file))
    if is_server(node) and settings.etcd_s3:
        changed.append(secret_file(name="Ensure etcd snapshots also go to the backup target", path=S3_DROP_IN,
                                   secret=etcd_s3_drop_in(profile)))  # fmt: skip
    changed.append(files.put(name=f"Ensure {CONFIG} is rendered", src=StringIO(rendered[CONFIG]), dest=CONFIG,
                             mode="600", create_remote_dir=True))  # fmt: skip
    if is_server(node):
        # The servers apply these themselves (like `kubectl apply`): no restart needed.
        for path in manifests(settings):
            files.put(name=f"Ensure manifest {path.rsplit('/', 1)[1]} is in place", src=StringIO(rendered[path]),
                      dest=path, mode="600", create_remote_dir=True)  # fmt: skip
    return changed


def _running(node: Host, settings: Rke2Settings, changed: list) -> None:
    """Start (or, after a change, restart) the unit, then wait a bounded time for the node to be ready."""
    unit = f"rke2-{kind(node)}"
    was_running = host.get_fact(SystemdStatus).get(f"{unit}.service", False)
    started = systemd.service(name=f"Ensure {unit} is running and enabled", service=unit, running=True,
                              enabled=True)  # fmt: skip
    restarted = (
        systemd.service(name=f"Ensure {unit} runs with its configuration", service=unit, restarted=True,
                        _if=any_changed(*changed))
        if was_running
        else started
    )  # fmt: skip
    seconds = settings.ready_timeout
    if is_server(node):
        ready = f"{api_ready()} && {node_ready(node.name)}"
        what = "the API (/readyz) and the node"
    else:
        ready = "curl -s --max-time 2 http://127.0.0.1:10248/healthz | grep -qx ok"
        what = "the kubelet"
    server.shell(
        name=f"Wait for {unit} to be ready",
        commands=[wait(ready, seconds, f"{unit} on {node.name}: {what} not ready after {seconds}s; "
                                       f"see journalctl -u {unit}")],
        _if=any_changed(started, restarted),
    )  # fmt: skip
