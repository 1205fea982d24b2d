"""Operations and deploy steps shared by roles."""

from __future__ import annotations

import base64
import hashlib
import posixpath
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas import artifacts
from gpuaas.facts import FILE_IDENTITY, ProgramRecord, program_record_path
from gpuaas.probe import Probe, program_probe
from gpuaas.profile import Profile
from gpuaas.secrets import Secret

#: Ends a value on a private write's standard input; base64 never holds a line with a dot alone.
_END_OF_VALUE = "."


def private_write(path: str, value: str, mode: str = "600", user: str = "root", group: str = "root") -> StringCommand:
    """
    The command that replaces `path` on the host with `value`, which travels on the command's standard
    input: never in a file of anyone else's, never on a command line, never in sudo's log. The value
    is written into a directory only root can enter beside `path`, given its owner and mode, and
    moved into place only once it arrived whole; whatever fails, that directory is removed.
    """
    parent, q_parent = posixpath.dirname(path) or "/", shlex.quote(posixpath.dirname(path) or "/")
    encoded, written = '"$work/encoded"', '"$work/value"'
    script = "; ".join(
        [
            "set -e",
            f"mkdir -p {q_parent}",
            # What a run killed before its cleanup (SIGKILL, a host reset) left of an earlier write.
            f"rm -rf {q_parent}/.gpuaas-secret.*",
            "umask 077",
            f"work=$(mktemp -d {shlex.quote(posixpath.join(parent, '.gpuaas-secret.XXXXXX'))})",
            "trap 'rm -rf \"$work\"' EXIT",
            "trap 'exit 129' HUP INT TERM PIPE",
            f"awk '$0 == \"{_END_OF_VALUE}\" {{ok = 1; exit}} {{print}} END {{exit !ok}}' > {encoded}",
            f"base64 -d {encoded} > {written}",
            f"chown {shlex.quote(user)}:{shlex.quote(group)} {written}",
            f"chmod {shlex.quote(mode)} {written}",
            f"mv -f -T {written} {shlex.quote(path)}",
        ]
    )
    lines = base64.encodebytes(value.encode("utf-8")).decode("ascii").splitlines() + [_END_OF_VALUE]
    return StringCommand(script, _stdin=lines)


def connector_arguments(host) -> dict:
    """The connection arguments an operation's own commands get, for commands a callback runs itself."""
    return {"_sudo": bool(host.data.get("_sudo"))}


def read_private(host, path: str) -> str | None:
    """A file only root may read, as text, over the connection's own channel (pyinfra's download with
    sudo would first copy it somewhere anyone can read it). None when it cannot be read."""
    ok, output = host.run_shell_command(
        StringCommand("cat", shlex.quote(path)), print_output=False, print_input=False, **connector_arguments(host)
    )
    return output.stdout if ok else None


@operation()
def secret_file(path: str, secret: Secret, mode: str = "600", user: str = "root", group: str = "root"):
    """
    Keep a secret in a file on the host. The value travels only on a command's standard input (see
    private_write): never in a temporary file, a command line, pyinfra's output or --diff (only the
    secret's name is shown).

    + path: remote file
    + secret: a resolved gpuaas.secrets.Secret
    + mode: file mode, 600 unless the service needs otherwise
    + user: file owner
    + group: file group

    **Example:**

    .. code:: python

        secret_file(path="/etc/rancher/rke2/token", secret=resolve(profile, "secret:rke2_token"))
    """
    value = secret.reveal()
    info = host.get_fact(File, path=path)
    current_sha256 = host.get_fact(Sha256File, path=path) if info else None
    if current_sha256 != hashlib.sha256(value.encode("utf-8")).hexdigest():
        yield private_write(path, value, mode=mode, user=user, group=group)
    elif str(info["mode"]) != mode.lstrip("0") or (info["user"], info["group"]) != (user, group):
        q_path = shlex.quote(path)
        yield f"chmod {mode} {q_path} && chown {shlex.quote(user)}:{shlex.quote(group)} {q_path}"
    else:
        host.noop(f"{path} holds {secret!r}")


def program_target(artifact_name: str, version: str, program: str) -> str:
    """Where install_program puts a program on the host."""
    return f"/opt/gpuaas/{artifact_name}/{version}/{program}"


@operation()
def program_file(src: str, dest: str, sha256: str):
    """
    Keep at `dest` the verified program `src`, whose sha256 is `sha256`. It is uploaded beside `dest`,
    checked on the host and renamed into place, so a running program keeps its file and a half-done
    upload is never in use. A record beside it (`.NAME.sha256`: the digest and the file's size, change
    time and inode) lets later runs see the program unchanged without reading it; any write to the
    file changes its identity, and the program is hashed (and, if it differs, replaced) again.

    + src: the program on the controller
    + dest: where it goes on the host
    + sha256: its sha256
    """
    q_dest, q_record = shlex.quote(dest), shlex.quote(program_record_path(dest))
    current = host.get_fact(ProgramRecord, path=dest)
    if current["identity"] and current["record"] == f"{sha256} {current['identity']}":
        host.noop(f"{dest} is the verified program")
        return
    if host.get_fact(Sha256File, path=dest) != sha256:
        upload = shlex.quote(f"{dest}.upload")
        yield f"mkdir -p {shlex.quote(posixpath.dirname(dest))}"
        yield FileUploadCommand(src, f"{dest}.upload")
        mismatch = shlex.quote(f"{dest}: the upload does not have the verified sha256")
        yield (
            f'[ "$(sha256sum < {upload})" = {shlex.quote(f"{sha256}  -")} ] || {{ rm -f {upload}; '
            f"echo {mismatch} >&2; exit 1; }}; chmod 755 {upload} && mv -f {upload} {q_dest}"
        )
    new_record = shlex.quote(f"{program_record_path(dest)}.new")
    yield (
        f"printf '%s %s\\n' {shlex.quote(sha256)} \"$({FILE_IDENTITY} {q_dest})\" > {new_record} && "
        f"mv -f {new_record} {q_record}"
    )


def install_program(artifact_name: str, version: str, local_program: Path, sha256: str, link: str):
    """
    Put a verified program on the host under /opt/gpuaas/ARTIFACT/VERSION/ and point `link` at it,
    so a version change is one link flip and the previous version stays for a rollback.
    Returns the operation that changed the link (restart services on it).
    """
    target = program_target(artifact_name, version, local_program.name)
    program_file(
        name=f"Ensure {artifact_name} {version} is on the host", src=str(local_program), dest=target, sha256=sha256
    )
    return files.link(name=f"Ensure {link} is {artifact_name} {version}", path=link, target=target)


@operation()
def unit_running(unit: str):
    """
    Start a systemd unit that is not running. Its failed state is reset first: a unit that failed over
    and over (its program missing after an interrupted run, say) has hit its start limit, and systemd
    refuses to start it until then.

    + unit: the unit's name

    **Example:**

    .. code:: python

        unit_running(unit="nats")
    """
    # The fact names units in full, as pyinfra's own systemd operations do.
    name = unit if "." in unit else f"{unit}.service"
    if host.get_fact(SystemdStatus, services=[name]).get(name):
        host.noop(f"{unit} is running")
        return
    yield f"systemctl reset-failed {shlex.quote(name)} 2>/dev/null; systemctl start {shlex.quote(name)}"


def service_running(service: str, changed: list, ready: str, unit=None, seconds: int = 30):
    """
    Keep `service` running and enabled; reload systemd when its `unit` file operation changed;
    restart it when any operation in `changed` changed the host, then poll the shell test `ready`
    every half second until it passes, failing the host with a clear message after `seconds`.
    Returns the restart operation.
    """
    if unit is not None:
        systemd.daemon_reload(name=f"Ensure systemd knows the {service} unit", _if=unit.did_change)
    unit_running(name=f"Ensure {service} is running", unit=service)
    systemd.service(name=f"Ensure {service} is enabled", service=service, enabled=True)
    restart = systemd.service(
        name=f"Ensure {service} runs with its configuration", service=service, restarted=True, _if=any_changed(*changed)
    )
    server.shell(
        name=f"Wait for {service} to be ready",
        commands=[
            f"for i in $(seq {seconds * 2}); do {{ {ready} ; }} && exit 0; sleep 0.5; done; "
            f"echo '{service} not ready after {seconds}s' >&2; exit 1"
        ],
        _if=restart.did_change,
    )
    return restart


def install_pinned(profile: Profile, artifact_name: str, link: str):
    """Verify the profile's pin of `artifact_name` on the controller (raising before anything runs on a
    mismatch), then install its program and point `link` at it. Returns the link operation."""
    pin = profile.artifacts[artifact_name]
    program = artifacts.binary(artifact_name, pin)
    return install_program(artifact_name, pin.version, program, artifacts.program_digest(artifact_name, pin), link)


def pinned_program_probe(profile: Profile, artifact_name: str, link: str) -> Probe:
    """The probe that install_pinned's program and link are in place, read without hashing it."""
    pin = profile.artifacts[artifact_name]
    target = program_target(artifact_name, pin.version, artifacts.program_name(artifact_name, pin))
    return program_probe(link, target, artifacts.program_digest(artifact_name, pin))


def service_account(name: str, home: str, private_dirs: tuple[str, ...] = ()) -> None:
    """A system user and group `name` without a login shell, and directories only it can read."""
    server.group(name=f"Ensure group {name} exists", group=name, system=True)
    server.user(
        name=f"Ensure account {name} exists",
        user=name,
        group=name,
        home=home,
        shell="/usr/sbin/nologin",
        system=True,
        create_home=True,
    )
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
