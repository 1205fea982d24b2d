"""Manage the network side of a service that listens on loopback only: a systemd socket unit listens on
the host's profile address, and systemd-socket-proxyd, started by it, carries each connection to the
service's loopback port. The service's other ports (its internal and management ones) stay on loopback."""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

#: Where the services that are forwarded to listen.
LOOPBACK = "127.0.0.1"
#: systemd's own TCP forwarder (Debian's `systemd` package).
SOCKET_PROXY = "/lib/systemd/systemd-socket-proxyd"
UNIT_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class Forward:
    """One port of the host's profile address, forwarded to the same port on loopback."""

    #: The units' name: NAME.socket listens, NAME.service forwards.
    name: str
    address: str
    port: int
    #: The unit of the service forwarded to; the forwarder stops with it.
    service: str
    #: What the port serves, and who may use it (a comment at the top of both units).
    description: str
    #: The role that manages the units (their first line says so).
    role: str

    @property
    def socket_unit(self) -> str:
        return f"{UNIT_DIR}/{self.name}.socket"

    @property
    def proxy_unit(self) -> str:
        return f"{UNIT_DIR}/{self.name}.service"


def forward_units(forward: Forward) -> dict[str, str]:
    """The socket and forwarder units of `forward`, by path on the host."""
    header = f"# Managed by gpuaas roles/{forward.role}.\n# {forward.description}\n"
    where = f"{forward.address}:{forward.port}"
    socket = (
        f"{header}[Unit]\nDescription={where}, forwarded to {forward.service} on {LOOPBACK}\n\n"
        f"[Socket]\nListenStream={where}\n\n[Install]\nWantedBy=sockets.target\n"
    )
    proxy = (
        f"{header}[Unit]\nDescription=Forwarder of {where} to {LOOPBACK}:{forward.port}\n"
        f"Requires={forward.name}.socket\nBindsTo={forward.service}\n"
        f"After={forward.name}.socket {forward.service}\n\n"
        f"[Service]\nExecStart={SOCKET_PROXY} {LOOPBACK}:{forward.port}\nDynamicUser=true\nNoNewPrivileges=true\n"
        "ProtectSystem=strict\nProtectHome=true\nPrivateTmp=true\n"
    )
    return {forward.socket_unit: socket, forward.proxy_unit: proxy}


def forwarded(forward: Forward) -> None:
    """Write the units of `forward` (0644 root), and keep its socket listening and enabled. When either
    unit changed, systemd rereads them, the forwarder started from the old ones stops (the next
    connection starts it as written) and the socket listens anew."""
    written = [
        files.put(
            name=f"Ensure {path} is rendered", src=StringIO(content), dest=path, mode="644", user="root", group="root"
        )
        for path, content in forward_units(forward).items()
    ]
    changed = any_changed(*written)
    systemd.daemon_reload(name=f"Ensure systemd knows the units of {forward.name}", _if=changed)
    systemd.service(
        name=f"Ensure the forwarder of {forward.name}'s previous units is stopped",
        service=f"{forward.name}.service",
        running=False,
        _if=changed,
    )
    systemd.service(
        name=f"Ensure {forward.name}.socket listens as written",
        service=f"{forward.name}.socket",
        running=True,
        restarted=True,
        _if=changed,
    )
    systemd.service(
        name=f"Ensure {forward.name}.socket is listening and enabled",
        service=f"{forward.name}.socket",
        running=True,
        enabled=True,
    )


def unforwarded(name: str) -> None:
    """Stop, disable and remove the socket and forwarder units `name` that `forwarded` wrote, so that
    the port is free again (for a service that now binds it itself); nothing when they are not there."""
    paths = (f"{UNIT_DIR}/{name}.socket", f"{UNIT_DIR}/{name}.service")
    if not any(host.get_fact(File, path=path) for path in paths):
        return
    server.shell(
        name=f"Ensure {name}.socket and its forwarder are stopped and disabled",
        commands=[f"systemctl disable --now {name}.socket {name}.service 2>/dev/null || true"],
    )
    for path in paths:
        files.file(name=f"Ensure {path} is removed", path=path, present=False)
    systemd.daemon_reload(name=f"Ensure systemd has forgotten the units of {name}")


def forward_sockets(forwards: list[Forward]) -> list[str]:
    """The socket units of `forwards`, as systemctl names them."""
    return [f"{forward.name}.socket" for forward in forwards]
