"""Operations and deploy steps shared by roles."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas import artifacts
from gpuaas.probe import Probe, program_probe
from gpuaas.profile import Profile
from gpuaas.secrets import Secret


@operation()
def secret_file(path: str, secret: Secret, mode: str = "600", user: str = "root", group: str = "root"):
    """
    Keep a secret in a file on the host. The value travels only as a file upload: never in a
    command line, never in pyinfra's output or --diff (only the secret's name is shown).

    + path: remote file
    + secret: a resolved gpuaas.secrets.Secret
    + mode: file mode, 600 unless the service needs otherwise
    + user: file owner
    + group: file group

    **Example:**

    .. code:: python

        secret_file(path="/etc/rancher/rke2/token", secret=resolve(profile, "secret:rke2_token"))
    """
    q_path = shlex.quote(path)
    value = secret.reveal()
    info = host.get_fact(File, path=path)
    if info is None:
        # Created empty with its final mode first, so the value is never readable by others.
        parent = shlex.quote(posixpath.dirname(path) or "/")
        owner = f"-o {shlex.quote(user)} -g {shlex.quote(group)}"
        yield f"mkdir -p {parent} && install -m {mode} {owner} /dev/null {q_path}"
    current_sha256 = host.get_fact(Sha256File, path=path) if info else None
    upload = current_sha256 != hashlib.sha256(value.encode("utf-8")).hexdigest()
    if upload:
        yield FileUploadCommand(StringIO(value), path)
    if upload or str(info["mode"]) != mode.lstrip("0") or (info["user"], info["group"]) != (user, group):
        yield f"chmod {mode} {q_path} && chown {shlex.quote(user)}:{shlex.quote(group)} {q_path}"
    else:
        host.noop(f"{path} holds {secret!r}")


def program_target(artifact_name: str, version: str, local_program: Path) -> str:
    """Where install_program puts a program on the host."""
    return f"/opt/gpuaas/{artifact_name}/{version}/{local_program.name}"


def install_program(artifact_name: str, version: str, local_program: Path, link: str):
    """
    Put a verified program on the host under /opt/gpuaas/ARTIFACT/VERSION/ and point `link` at it,
    so a version change is one link flip and the previous version stays for a rollback.
    Returns the operation that changed the link (restart services on it).
    """
    target = program_target(artifact_name, version, local_program)
    files.put(name=f"Ensure {artifact_name} {version} is on the host", src=str(local_program), dest=target,
              mode="755", create_remote_dir=True)  # fmt: skip
    return files.link(name=f"Ensure {link} is {artifact_name} {version}", path=link, target=target)


def service_running(service: str, changed: list, ready: str, unit=None, seconds: int = 30):
    """
    Keep `service` running and enabled; reload systemd when its `unit` file operation changed;
    restart it when any operation in `changed` changed the host, then poll the shell test `ready`
    every half second until it passes, failing the host with a clear message after `seconds`.
    Returns the restart operation.
    """
    if unit is not None:
        systemd.daemon_reload(name=f"Ensure systemd knows the {service} unit", _if=unit.did_change)
    systemd.service(name=f"Ensure {service} is running and enabled", service=service, running=True, enabled=True)
    restart = systemd.service(name=f"Ensure {service} runs with its configuration", service=service,
                              restarted=True, _if=any_changed(*changed))  # fmt: skip
    server.shell(
        name=f"Wait for {service} to be ready",
        commands=[f"for i in $(seq {seconds * 2}); do {{ {ready} ; }} && exit 0; sleep 0.5; done; "
                  f"echo '{service} not ready after {seconds}s' >&2; exit 1"],
        _if=restart.did_change,
    )  # fmt: skip
    return restart


def pinned_program(profile: Profile, artifact_name: str) -> tuple[Path, str]:
    """The verified program of the profile's pin of `artifact_name` on the controller (raising before
    anything runs on a mismatch), and where it goes on the host."""
    pin = profile.artifacts[artifact_name]
    program = artifacts.binary(artifact_name, pin)
    return program, program_target(artifact_name, pin.version, program)


def install_pinned(profile: Profile, artifact_name: str, link: str):
    """Verify the profile's pin of `artifact_name` on the controller (raising before anything runs on a
    mismatch), then install its program and point `link` at it. Returns the link operation."""
    pin = profile.artifacts[artifact_name]
    program = artifacts.binary(artifact_name, pin)
    return install_program(artifact_name, pin.version, program, link)


def pinned_program_probe(profile: Profile, artifact_name: str, link: str) -> Probe:
    """The probe that install_pinned's program and link are in place."""
    program, target = pinned_program(profile, artifact_name)
    return program_probe(link, target, program)


def service_account(name: str, home: str, private_dirs: tuple[str, ...] = ()) -> None:
    """A system user and group `name` without a login shell, and directories only it can read."""
    server.group(name=f"Ensure group {name} exists", group=name, system=True)
    server.user(name=f"Ensure account {name} exists", user=name, group=name, home=home,
                shell="/usr/sbin/nologin", system=True, create_home=True)  # fmt: skip
    for path in private_dirs:
        files.directory(name=f"Ensure {path} is private", path=path, user=name, group=name, mode="700")


@operation()
def join_point(reason: str):
    """
    Change nothing; order hosts. pyinfra orders each host's operations on its own, so an operation
    after this one on any host runs only once every host calling it has run all it queued before it.

    + reason: what the hosts wait for, shown as the operation's outcome
    """
    host.noop(reason)
    yield from ()
