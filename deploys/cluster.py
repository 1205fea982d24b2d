"""The RKE2 cluster: the first server, then the other servers, then the agents, then the whole cluster;
then what runs in it (the cluster phase's other roles: the GPU stack).

pyinfra inventories/ENV.py deploys/cluster.py

pyinfra orders each host's operations on its own; the join points (one operation every cluster host
runs) make the first server ready before any node joins it, and every server before the agents.
"""

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.discovery import roles_in
from gpuaas.groups import CLUSTER, RKE2_AGENTS, RKE2_SERVERS
from gpuaas.operations import join_point
from gpuaas.role import Phase
from roles.rke2.cluster import cluster_ready
from roles.rke2.config import first_server
from roles.rke2.deploy import rke2

first = host_in((RKE2_SERVERS,)) and current_node() == first_server(current_profile())

if first:
    rke2()
if host_in(CLUSTER):
    join_point(name="Wait until the first server is ready", reason="the first server is ready")
if host_in((RKE2_SERVERS,)) and not first:
    rke2()
if host_in(CLUSTER):
    join_point(name="Wait until every server is ready", reason="every server is ready")
if host_in((RKE2_AGENTS,)):
    rke2()
if host_in(CLUSTER):
    join_point(name="Wait until every node has joined", reason="every node has joined")
if first:
    cluster_ready()
if host_in(CLUSTER):
    join_point(name="Wait until the cluster is ready", reason="the cluster is ready")
    # What runs in the cluster (the GPU stack), once the cluster is ready.
    for role in roles_in(Phase.CLUSTER):
        if (
            role.name != "rke2"
            and role.applies(current_node())
            and role.not_deployed_because(current_profile()) is None
        ):
            role.deploy_function()()
