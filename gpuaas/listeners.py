"""What each host of a profile listens on: every socket's protocol, address and port, the role and the
profile field that declare it, and whether it refuses clients without credentials. The profile's port
check and the census of the lane's hosts both read it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from gpuaas.discovery import all_roles
from gpuaas.profile import Host, Profile

#: Every address of the host (0.0.0.0 and ::).
ANY = "*"
#: Loopback (127.0.0.0/8 and ::1): only the host itself connects.
LOOPBACK = "loopback"
Protocol = Literal["tcp", "udp"]


@dataclass(frozen=True)
class Listener:
    """One socket a host is expected to listen on."""

    protocol: Protocol
    #: An address of the host, LOOPBACK or ANY.
    address: str
    #: None: ports picked when it starts (by `program`, when it names one).
    port: int | None
    #: What runs it: a role, `sshd`, or `lane` for what Docker brings into a lane's container.
    role: str
    #: The profile field that sets the port (`services.redis.port`), or what fixes it (`RKE2 supervisor`).
    field: str
    #: Clients without credentials (a password, a key, a signed request, a client certificate) are refused.
    credentials: bool
    #: The program that listens, as `ss -p` names it, for ports it picks itself.
    program: str = ""

    @property
    def on_network(self) -> bool:
        """Other hosts can connect to it."""
        return self.address == ANY or (self.address != LOOPBACK and not ipaddress.ip_address(self.address).is_loopback)

    def admits(self, protocol: str, address: str, port: int, process: str = "") -> bool:
        """Whether a listening socket (as `ss` shows it: `*`, `0.0.0.0`, `[::]`, `127.0.0.1`, `::1`,
        an address with `%interface`; `process` its `users:((...))`) is this listener, on this address
        or a narrower one."""
        if protocol != self.protocol:
            return False
        if self.port is None:
            if self.program and f'(("{self.program}",' not in process:
                return False
        elif port != self.port:
            return False
        bound = socket_address(address)
        if self.address == ANY:
            return True
        if bound == ANY:
            return False
        if self.address == LOOPBACK:
            return ipaddress.ip_address(bound).is_loopback
        return ipaddress.ip_address(bound) == ipaddress.ip_address(self.address)

    def describe(self) -> str:
        where = {ANY: "every address", LOOPBACK: "loopback"}.get(self.address, self.address)
        port = self.port if self.port is not None else f"{self.program or 'any'} picked ports"
        return f"{port}/{self.protocol} on {where} ({self.field})"


def socket_address(shown: str) -> str:
    """The address of a listening socket as `ss` shows it, as an IP address or ANY."""
    address = shown.strip("[]").split("%")[0]
    if address in ("*", "0.0.0.0", "::"):
        return ANY
    return str(ipaddress.ip_address(address))


def on(
    address: str, protocol: Protocol, port: int | None, role: str, field: str, credentials: bool, program: str = ""
) -> Listener:
    return Listener(protocol, address, port, role, field, credentials, program)


#: Docker's resolver inside a lane container: it picks its TCP and UDP ports on this address itself.
DOCKER_DNS = "127.0.0.11"


def _system(profile: Profile) -> list[Listener]:
    """sshd on the profile's SSH port (key logins only), chronyd's command port on loopback and, on
    the local lane's containers, Docker's resolver."""
    found = []
    if profile.connection.kind == "ssh":
        found.append(on(ANY, "tcp", profile.connection.port, "sshd", "connection.port", True))
    found.append(on(LOOPBACK, "udp", 323, "common", "chronyd command port (fixed)", False))
    if profile.lane is not None:
        found += [
            on(DOCKER_DNS, protocol, None, "lane", "lane: Docker's resolver in the container", False)
            for protocol in ("tcp", "udp")
        ]
    return found


def host_listeners(profile: Profile, node: Host) -> list[Listener]:
    """Every socket `node` is expected to listen on: sshd's and the system's, then those of each role
    applied to it and deployed (each role declares its own)."""
    found = _system(profile)
    for role in all_roles():
        declared = role.part(role.listeners)
        if declared is not None and role.applies(node) and role.enabled(profile):
            found += declared(profile, node)
    return found


def unexpected(listeners: list[Listener], protocol: str, address: str, port: int, process: str = "") -> bool:
    """A listening socket none of `listeners` admits."""
    return not any(listener.admits(protocol, address, port, process) for listener in listeners)


def clashes(listeners: list[Listener]) -> list[tuple[Listener, Listener]]:
    """(earlier, later) for every two listeners of different fields on the same protocol and port: one
    port of a host belongs to one service, whatever address each would bind."""
    owners: dict[tuple[str, int], Listener] = {}
    found = []
    for listener in listeners:
        if listener.port is None:
            continue
        key = (listener.protocol, listener.port)
        owner = owners.setdefault(key, listener)
        if owner.field != listener.field and (owner, listener) not in found:
            found.append((owner, listener))
    return found
