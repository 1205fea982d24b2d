"""What a role manages on a host, declared once: each item knows how to read itself back (its probes, all
of a role's run in one round trip, see gpuaas.probe) and how to bring itself about (its operations).

A role's `state.py` lists its items; `converge` checks them all at once and, when anything differs,
runs every item's operations in order, each of which changes only what differs. The steps no item can
declare (initialising OpenBao, creating databases) are a role's own code, run after the items, with
the operations the items queued at hand (`Applied`) to act on what changed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, Protocol

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files

from filters.jinja import jinja_env_kwargs
from gpuaas.forwarding import Forward, forward_sockets, forward_units, forwarded, unforwarded
from gpuaas.operations import install_pinned, pinned_program_probe, secret_file, service_account, service_running
from gpuaas.probe import Probe, account_probe, drift, owned_files_probe, packages_probe, services_probe, state_verified
from gpuaas.profile import Profile
from gpuaas.secrets import Secret
from gpuaas.templating import render_template


class Item(Protocol):
    """One thing a role keeps on a host. Items are told apart by identity (`Applied` maps each item object
    to its operation; a `Service` names the very items it restarts on), so their classes compare by
    identity too (`@dataclass(eq=False)`), which also keeps them cheap to define."""

    #: How reports and the drift matrix name it: `file /etc/redis/gpuaas.conf`.
    @property
    def name(self) -> str: ...

    def probes(self) -> list[Probe]:
        """Commands that read the item back, and what they must print when it is in place."""

    def apply(self, applied: Applied) -> OperationMeta | None:
        """Queue the operations that bring the item about; the one whose change matters to others."""


class Applied(dict):
    """The operation each item queued, by item: what later items and steps restart or act on."""

    def changed(self, items: Iterable[Item]) -> list[OperationMeta]:
        return [self[item] for item in items if self.get(item) is not None]


def _stat(path: str) -> str:
    return f"sha1sum {shlex.quote(path)}; stat -c '%n %a %U %G' {shlex.quote(path)}"


@dataclass(eq=False)
class Template:
    """A file rendered from a Jinja2 template next to the role, with its mode and owner."""

    path: str
    template: str
    context: dict[str, Any]
    mode: str = "644"
    user: str = "root"
    group: str = "root"

    @property
    def name(self) -> str:
        return f"file {self.path}"

    @property
    def content(self) -> str:
        return render_template(self.template, self.context)

    def probes(self) -> list[Probe]:
        return [owned_files_probe(self.name, {self.path: (self.content, self.mode, self.user, self.group)})]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.template(
            name=f"Ensure {self.path} is rendered",
            src=self.template,
            dest=self.path,
            user=self.user,
            group=self.group,
            mode=self.mode,
            jinja_env_kwargs=jinja_env_kwargs(),
            **self.context,
        )


@dataclass(eq=False)
class Content:
    """A file holding text computed on the controller (not secret), with its mode and owner."""

    path: str
    text: str
    mode: str = "644"
    user: str = "root"
    group: str = "root"
    #: What the operation calls the file's content: `the keycloak realm`.
    what: str = ""
    #: The operation's whole name, where the role names it otherwise.
    operation: str = ""
    #: Create the file's directory when missing (one the service itself makes only once it runs).
    create_remote_dir: bool = False

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def probes(self) -> list[Probe]:
        return [owned_files_probe(self.name, {self.path: (self.text, self.mode, self.user, self.group)})]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.put(
            name=self.operation or f"Ensure {self.path} holds {self.what or 'its content'}",
            src=StringIO(self.text),
            dest=self.path,
            user=self.user,
            group=self.group,
            mode=self.mode,
            create_remote_dir=self.create_remote_dir,
        )


@dataclass(eq=False)
class SecretFile:
    """A file holding a secret: the probe compares digests, the value travels only on standard input."""

    path: str
    secret: Secret
    mode: str = "600"
    user: str = "root"
    group: str = "root"
    #: What the operation says the file holds: `the password`.
    what: str = "its secret"

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def probes(self) -> list[Probe]:
        return [owned_files_probe(self.name, {self.path: (self.secret.reveal(), self.mode, self.user, self.group)})]

    def apply(self, applied: Applied) -> OperationMeta:
        return secret_file(
            name=f"Ensure {self.path} holds {self.what}",
            path=self.path,
            secret=self.secret,
            mode=self.mode,
            user=self.user,
            group=self.group,
        )


@dataclass(eq=False)
class Packages:
    """Debian packages, installed (held back from removal is the operator's business)."""

    names: tuple[str, ...]
    cache_time: int = 3600

    @property
    def name(self) -> str:
        return f"packages {' '.join(self.names)}"

    def probes(self) -> list[Probe]:
        probe = packages_probe(list(self.names))
        return [Probe(self.name, probe.command, probe.wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        return apt.packages(
            name=f"Ensure {', '.join(self.names)} {'is' if len(self.names) == 1 else 'are'} installed",
            packages=list(self.names),
            update=True,
            cache_time=self.cache_time,
        )


@dataclass(eq=False)
class Account:
    """A system account and group without a login shell, with directories only it can read (0700)."""

    user: str
    home: str
    private_dirs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"account {self.user}"

    def probes(self) -> list[Probe]:
        probe = account_probe(self.user, self.private_dirs)
        return [Probe(self.name, probe.command, probe.wanted)]

    def apply(self, applied: Applied) -> None:
        service_account(self.user, home=self.home, private_dirs=self.private_dirs)


@dataclass(eq=False)
class Directory:
    path: str
    mode: str
    user: str = "root"
    group: str = "root"

    @property
    def name(self) -> str:
        return f"directory {self.path}"

    def probes(self) -> list[Probe]:
        return [
            Probe(self.name, f"stat -c '%a %U %G' {shlex.quote(self.path)}", f"{self.mode} {self.user} {self.group}")
        ]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.directory(
            name=f"Ensure {self.path} is {self.mode} {self.user}:{self.group}",
            path=self.path,
            user=self.user,
            group=self.group,
            mode=self.mode,
        )


@dataclass(eq=False)
class Link:
    path: str
    target: str

    @property
    def name(self) -> str:
        return f"link {self.path}"

    def probes(self) -> list[Probe]:
        return [Probe(self.name, f"readlink {shlex.quote(self.path)}", self.target)]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.link(name=f"Ensure {self.path} points at {self.target}", path=self.path, target=self.target)


@dataclass(eq=False)
class Line:
    """A line present, exactly, in a file the role does not own (a package's main configuration)."""

    path: str
    line: str

    @property
    def name(self) -> str:
        return f"line {self.path}"

    def probes(self) -> list[Probe]:
        command = f"grep -cxF {shlex.quote(self.line)} {shlex.quote(self.path)}"
        return [Probe(self.name, command, "[1-9][0-9]*", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.line(
            name=f"Ensure {self.path} has `{self.line}`", path=self.path, line=f"^{self.line}$", replace=self.line
        )


@dataclass(eq=False)
class PinnedProgram:
    """The profile's pinned program under /opt/gpuaas, its sha256 checked on the controller, and `link` to it."""

    profile: Profile
    artifact: str
    link: str

    @property
    def name(self) -> str:
        return f"program {self.link}"

    def probes(self) -> list[Probe]:
        probe = pinned_program_probe(self.profile, self.artifact, self.link)
        return [Probe(self.name, probe.command, probe.wanted, pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        return install_pinned(self.profile, self.artifact, self.link)


@dataclass(eq=False)
class Service:
    """A systemd unit running and enabled, restarted when any of `restart_on` changed (systemd reloaded
    first when its `unit_file` did), then waited for until the shell test `ready` passes."""

    unit: str
    ready: str
    restart_on: tuple[Item, ...] = ()
    unit_file: Item | None = None
    seconds: int = 30

    @property
    def name(self) -> str:
        return f"service {self.unit}"

    def probes(self) -> list[Probe]:
        probe = services_probe(running=[self.unit], enabled=[self.unit])
        return [Probe(self.name, probe.command, probe.wanted, pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        unit_file = applied.get(self.unit_file) if self.unit_file is not None else None
        return service_running(
            self.unit,
            changed=applied.changed(self.restart_on),
            ready=self.ready,
            unit=unit_file,
            seconds=self.seconds,
        )


@dataclass(eq=False)
class Checked:
    """State a role's own steps keep (databases, an unsealed vault): read back here with the items,
    brought about by the role's code after them."""

    key: str
    command: str
    wanted: str
    pattern: bool = False

    @property
    def name(self) -> str:
        return self.key

    def probes(self) -> list[Probe]:
        return [Probe(self.key, self.command, self.wanted, self.pattern)]

    def apply(self, applied: Applied) -> None:
        return None


@dataclass(eq=False)
class Upload:
    """A file copied as it is from the controller (an archive, verified there against its pin), with its
    sha256, mode and owner; its parent directories are created when missing."""

    path: str
    source: Path
    sha256: str
    mode: str = "644"
    user: str = "root"
    group: str = "root"
    #: What the operation calls the file: `keycloak-26.0.7.zip`.
    what: str = ""
    #: The operation's whole name, where the role names it otherwise.
    operation: str = ""

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def probes(self) -> list[Probe]:
        path = shlex.quote(self.path)
        wanted = f"{self.sha256} {self.path} {self.path} {self.mode} {self.user} {self.group}"
        return [Probe(self.name, f"sha256sum {path}; stat -c '%n %a %U %G' {path}", wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        return files.put(
            name=self.operation or f"Ensure {self.what or self.source.name} is on the host",
            src=str(self.source),
            dest=self.path,
            user=self.user,
            group=self.group,
            mode=self.mode,
            create_remote_dir=True,
        )


@dataclass(eq=False)
class Forwarded:
    """A port of the host's profile address forwarded to the same port on loopback, where the service
    listens: the socket and forwarder units (0644 root), the socket listening and enabled (see
    gpuaas.forwarding)."""

    forward: Forward

    @property
    def name(self) -> str:
        return f"forward {self.forward.name}"

    def probes(self) -> list[Probe]:
        units = {path: (content, "644", "root", "root") for path, content in forward_units(self.forward).items()}
        written = owned_files_probe(self.name, units)
        sockets = forward_sockets([self.forward])
        listening = services_probe(running=sockets, enabled=sockets)
        wanted = f"{re.escape(written.wanted)} {listening.wanted}"
        return [Probe(self.name, f"{written.command}; {listening.command}", wanted, pattern=True)]

    def apply(self, applied: Applied) -> None:
        forwarded(self.forward)


@dataclass(eq=False)
class Unforwarded:
    """A forwarder gone (its units stopped, disabled and removed): the service binds the port itself."""

    unit_name: str

    @property
    def name(self) -> str:
        return f"forward {self.unit_name} absent"

    def probes(self) -> list[Probe]:
        paths = [shlex.quote(f"/etc/systemd/system/{self.unit_name}.{kind}") for kind in ("socket", "service")]
        tests = " || ".join(f"test -e {path}" for path in paths)
        return [Probe(self.name, f"if {tests}; then echo present; else echo absent; fi", "absent")]

    def apply(self, applied: Applied) -> None:
        unforwarded(self.unit_name)


def live_drift(item: Item) -> bool:
    """Whether the item's probes differ from what it wants, asked of the host when the operation runs (an
    operation's `_if`, for items whose operation is a shell command that cannot tell by itself)."""
    return bool(drift(item.probes()))


def probes_of(items: Sequence[Item]) -> list[Probe]:
    """Every probe of `items`, once each."""
    return [probe for item in items for probe in item.probes()]


def converge(what: str, items: Sequence[Item], steps: Callable[[Applied], None] | None = None) -> Applied | None:
    """Check every item in one round trip; when all are in place report one unchanged step and return
    None. Otherwise queue each item's operations in order, then the role's own `steps`."""
    probes = probes_of(items)
    # pyinfra orders operations by the call stack: the no-op step is queued from here, not a frame deeper.
    if not drift(probes):
        state_verified(name=f"Ensure {what} is in place", checks=len(probes))
        return None
    applied = Applied()
    for item in items:
        applied[item] = item.apply(applied)
    if steps is not None:
        steps(applied)
    return applied
