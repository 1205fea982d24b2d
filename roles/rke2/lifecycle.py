"""Taking nodes out of the cluster: the explicit confirmation, the API side (drain, delete the node
and its node-password secret) and the host side (RKE2's own uninstall script)."""

from __future__ import annotations

import os
import shlex

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import server

from gpuaas.groups import CLUSTER
from gpuaas.profile import Profile
from roles.rke2.checks import kubectl
from roles.rke2.config import KUBECONFIG, KUBECTL, PREFIX, first_server
from roles.rke2.facts import Nodes
from roles.rke2.settings import Rke2Settings
from roles.rke2.upgrade import Batch, drain

#: The nodes a destructive deploy acts on (comma-separated) and the confirmation it needs.
NODES_ENV = "GPUAAS_NODES"
CONFIRM_ENV = "GPUAAS_CONFIRM"
UNINSTALL = f"{PREFIX}/bin/rke2-uninstall.sh"


def confirmed_nodes(profile: Profile, action: str, allow_first_server: bool = False) -> list[str]:
    """The nodes named in GPUAAS_NODES, once GPUAAS_CONFIRM repeats `ACTION ENV NODES` exactly.
    Raises DeployError (before anything runs) otherwise, or for a node that is not a cluster node
    of the profile, or (unless allowed) for the first server the others join."""
    names = [n.strip() for n in os.environ.get(NODES_ENV, "").split(",") if n.strip()]
    if not names:
        raise DeployError(f"{action}: name the nodes in {NODES_ENV} (comma-separated)")
    cluster = {h.name for h in profile.hosts if set(CLUSTER) & set(h.groups)}
    unknown = [n for n in names if n not in cluster]
    if unknown:
        raise DeployError(f"{action}: {', '.join(unknown)} are not cluster nodes of {profile.name}")
    if not allow_first_server and first_server(profile).name in names:
        raise DeployError(f"{action}: {first_server(profile).name} is the server the others join; it is not removed")
    wanted = f"{action} {profile.name} {','.join(names)}"
    if os.environ.get(CONFIRM_ENV) != wanted:
        raise DeployError(f"{action} is destructive and refused without {CONFIRM_ENV}='{wanted}'; nothing was changed")
    return names


def remove_from_api(names: list[str], settings: Rke2Settings) -> None:
    """On the first server: drain each node still in the cluster, delete it and its node-password secret."""
    for name in names:
        if name not in host.get_fact(Nodes, kubectl=KUBECTL, kubeconfig=KUBECONFIG):
            host.noop(f"{name} is not in the cluster")
            continue
        drain(Batch(f"node {name}", (name,)), settings)
        secret = f"{name}.node-password.rke2"
        server.shell(
            name=f"Delete node {name} and its node-password secret",
            commands=[
                kubectl(f"delete node {shlex.quote(name)}"),
                kubectl(f"-n kube-system delete secret {shlex.quote(secret)} --ignore-not-found"),
            ],
        )


def uninstall() -> None:
    """On the node: RKE2's own uninstall script (stops it, removes its files and data)."""
    if host.get_fact(File, path=UNINSTALL) is None:
        host.noop("RKE2 is not installed")
        return
    server.shell(name="Uninstall RKE2 (rke2-uninstall.sh)", commands=[UNINSTALL])
