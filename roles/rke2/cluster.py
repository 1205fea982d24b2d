"""Cluster-wide steps of roles/rke2, run on the first server once every node has had its turn."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from gpuaas.context import current_profile
from gpuaas.groups import CLUSTER
from gpuaas.profile import Profile
from roles.rke2.checks import all_ready, wait
from roles.rke2.config import API_PORT, KUBECONFIG, KUBECTL, first_server, settings_for
from roles.rke2.facts import Nodes
from roles.rke2.kubeconfig import default_path, kubeconfig_on_controller


def cluster_nodes(profile: Profile) -> list[str]:
    return [node.name for node in profile.hosts if set(CLUSTER) & set(node.groups)]


def api_url(profile: Profile) -> str:
    """The API URL the controller uses: the profile's API hostname, or the first server's address when
    the settings say the hostname does not resolve from the controller."""
    first = first_server(profile)
    endpoint = (
        str(first.address) if settings_for(profile, first).kubeconfig_via_address else profile.cluster.api_hostname
    )
    return f"https://{endpoint}:{API_PORT}"


@deploy("RKE2 cluster")
def cluster_ready() -> None:
    """Every node of the profile Ready (bounded wait, naming the nodes that are not), then the
    kubeconfig on the controller."""
    profile = current_profile()
    names = cluster_nodes(profile)
    seconds = settings_for(profile, first_server(profile)).ready_timeout
    server.shell(
        name=f"Wait for all {len(names)} nodes to be Ready",
        commands=[wait(all_ready(names), seconds, f"nodes not Ready after {seconds}s")],
        _if=lambda: (
            not all(host.get_fact(Nodes, kubectl=KUBECTL, kubeconfig=KUBECONFIG).get(n, {}).get("ready") for n in names)
        ),
    )
    kubeconfig_on_controller(
        name="Ensure the cluster's kubeconfig is on the controller",
        environment=profile.name,
        server=api_url(profile),
        target=str(default_path()),
    )
