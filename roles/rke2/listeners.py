"""The sockets RKE2 itself listens on, as RKE2 binds them."""

from __future__ import annotations

from gpuaas.groups import RKE2_SERVERS
from gpuaas.listeners import ANY, LOOPBACK, Listener, Protocol, on
from gpuaas.profile import Host, Profile
from roles.rke2.config import API_PORT, SUPERVISOR_PORT

#: (protocol, address, port, what, credentials, servers only). Its API and supervisor need a token or
#: a client certificate; etcd needs the cluster's client certificate; the kubelet authenticates every
#: request with the API. Canal's VXLAN carries pod traffic between nodes and kube-proxy's health check
#: answers anyone.
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


def listeners(profile: Profile, node: Host) -> list[Listener]:
    """The agent's ports on every node, a server's on servers."""
    server = RKE2_SERVERS in node.groups
    return [
        on(str(node.address) if address == "node" else address, protocol, port, "rke2", what, credentials)
        for protocol, address, port, what, credentials, servers_only in RKE2_PORTS
        if server or not servers_only
    ]
