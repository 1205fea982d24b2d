"""What each host of a profile listens on: every socket's protocol, address and port, the role and the
profile field that declare it, and whether it refuses clients without credentials. The profile's port
check and the census of the lane's hosts both read it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from gpuaas.profile import Host, Profile
from roles.object_store.settings import GRPC_OFFSET
from roles.rke2.config import API_PORT, SUPERVISOR_PORT

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


def _on(
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
        found.append(_on(ANY, "tcp", profile.connection.port, "sshd", "connection.port", True))
    found.append(_on(LOOPBACK, "udp", 323, "common", "chronyd command port (fixed)", False))
    if profile.lane is not None:
        found += [
            _on(DOCKER_DNS, protocol, None, "lane", "lane: Docker's resolver in the container", False)
            for protocol in ("tcp", "udp")
        ]
    return found


#: RKE2's own ports, as RKE2 binds them: (protocol, address, port, what, credentials, servers only).
#: Its API and supervisor need a token or a client certificate; etcd needs the cluster's client
#: certificate; the kubelet authenticates every request with the API. Canal's VXLAN carries pod
#: traffic between nodes and kube-proxy's health check answers anyone.
RKE2_PORTS: tuple[tuple[Protocol, str, int, str, bool, bool], ...] = (
    ("tcp", ANY, API_PORT, "RKE2 Kubernetes API", True, True),
    ("tcp", ANY, SUPERVISOR_PORT, "RKE2 supervisor (node registration)", True, True),
    ("tcp", "node", 2379, "RKE2 etcd clients", True, True),
    ("tcp", LOOPBACK, 2379, "RKE2 etcd clients", True, True),
    ("tcp", "node", 2380, "RKE2 etcd peers", True, True),
    ("tcp", LOOPBACK, 2381, "RKE2 etcd metrics", False, True),
    ("tcp", LOOPBACK, 10257, "RKE2 kube-controller-manager", True, True),
    ("tcp", LOOPBACK, 10258, "RKE2 cloud-controller-manager", True, True),
    ("tcp", LOOPBACK, 10259, "RKE2 kube-scheduler", True, True),
    ("tcp", LOOPBACK, 6444, "RKE2 agent load balancer", False, False),
    ("tcp", ANY, 10250, "RKE2 kubelet", True, False),
    ("tcp", LOOPBACK, 10248, "RKE2 kubelet health", False, False),
    ("tcp", LOOPBACK, 10249, "RKE2 kube-proxy metrics", False, False),
    ("tcp", ANY, 10256, "RKE2 kube-proxy health", False, False),
    ("tcp", LOOPBACK, 9099, "RKE2 canal health", False, False),
    ("udp", ANY, 8472, "RKE2 canal VXLAN", False, False),
)


def _rke2(node: Host) -> list[Listener]:
    """RKE2's own ports on a host of the RKE2 groups (the agent's on every node, a server's on servers)."""
    server = "rke2_servers" in node.groups
    if not (server or "rke2_agents" in node.groups):
        return []
    return [
        _on(str(node.address) if address == "node" else address, protocol, port, "rke2", what, credentials)
        for protocol, address, port, what, credentials, servers_only in RKE2_PORTS
        if server or not servers_only
    ]


def _data_services(profile: Profile, node: Host) -> list[Listener]:
    """The enabled data services of a `data` host, each port on the address its role binds it to."""
    if "data" not in node.groups:
        return []
    address, services = str(node.address), profile.services
    pg, redis, nats, bao = services.postgres, services.redis, services.nats, services.openbao
    found = [
        _on(address, "tcp", pg.port, "postgres", "services.postgres.port", True),
        _on(LOOPBACK, "tcp", pg.port, "postgres", "services.postgres.port", True),
        _on(address, "tcp", redis.port, "redis", "services.redis.port", True),
        _on(LOOPBACK, "tcp", redis.port, "redis", "services.redis.port", True),
        _on(address, "tcp", nats.port, "nats", "services.nats.port", True),
        _on(LOOPBACK, "tcp", nats.monitor_port, "nats", "services.nats.monitor_port", False),
        _on(address, "tcp", bao.port, "openbao", "services.openbao.port", True),
        _on(address, "tcp", bao.cluster_port, "openbao", "services.openbao.cluster_port", True),
    ]
    return found + _object_store(profile, address) + _temporal(profile, address) + _keycloak(profile, address)


def _object_store(profile: Profile, address: str) -> list[Listener]:
    """SeaweedFS: its S3 API on the host's address (systemd's socket, signed requests only); every
    server, the gateway itself included, and each one's gRPC port on loopback."""
    store = profile.services.object_store
    if not store.enabled:
        return []
    found = [_on(address, "tcp", store.s3_port, "object_store", "services.object_store.s3_port", True)]
    for name in ("s3_port", "master_port", "volume_port", "filer_port"):
        port, field = getattr(store, name), f"services.object_store.{name}"
        found.append(_on(LOOPBACK, "tcp", port, "object_store", field, name == "s3_port"))
        found.append(
            _on(LOOPBACK, "tcp", port + GRPC_OFFSET, "object_store", f"{field} (gRPC: + {GRPC_OFFSET})", False)
        )
    return found


def _temporal(profile: Profile, address: str) -> list[Listener]:
    """Temporal's frontend (gRPC and HTTP) on the host's address, /metrics on loopback. Dev mode's
    embedded server listens on loopback only (systemd's sockets forward the frontend ports) and picks
    its internal services' ports itself; server mode binds the profile address for every service."""
    temporal = profile.services.temporal
    if not temporal.enabled:
        return []
    field = "services.temporal.{}".format
    found = [
        _on(address, "tcp", temporal.port, "temporal", field("port"), False),
        _on(address, "tcp", temporal.http_port, "temporal", field("http_port"), False),
        _on(LOOPBACK, "tcp", temporal.metrics_port, "temporal", field("metrics_port"), False),
    ]
    if temporal.mode == "dev":
        loopback = [
            _on(LOOPBACK, "tcp", getattr(temporal, name), "temporal", field(name), False)
            for name in ("port", "http_port", "ui_port")
        ]
        picked = _on(
            LOOPBACK,
            "tcp",
            None,
            "temporal",
            "services.temporal.mode: dev (the embedded server's own services)",
            False,
            program="temporal",
        )
        return found + loopback + [picked]
    internal = (
        "history_port",
        "matching_port",
        "worker_port",
        "frontend_membership_port",
        "history_membership_port",
        "matching_membership_port",
        "worker_membership_port",
    )
    return found + [_on(address, "tcp", getattr(temporal, name), "temporal", field(name), False) for name in internal]


def _keycloak(profile: Profile, address: str) -> list[Listener]:
    """Keycloak's HTTP port (behind the TLS edge) and its management port (health, metrics)."""
    keycloak = profile.services.keycloak
    if not keycloak.enabled:
        return []
    field = "services.keycloak.{}".format
    return [
        _on(address, "tcp", keycloak.http_port, "keycloak", field("http_port"), True),
        _on(address, "tcp", keycloak.management_port, "keycloak", field("management_port"), False),
    ]


def host_listeners(profile: Profile, node: Host) -> list[Listener]:
    """Every socket `node` is expected to listen on: sshd's and the system's, RKE2's own on the RKE2
    groups, and the enabled data services' on `data` hosts."""
    return _system(profile) + _rke2(node) + _data_services(profile, node)


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
