"""Remove nodes from the RKE2 cluster: drain them, delete them and their node-password secrets,
then uninstall RKE2 from them. Destructive: refused without the confirmation.

GPUAAS_NODES=prod-gpu-06 GPUAAS_CONFIRM='remove-node prod prod-gpu-06' \\
    pyinfra inventories/prod.py deploys/remove_node.py
"""

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.groups import CLUSTER, RKE2_SERVERS
from gpuaas.operations import join_point
from roles.rke2.config import first_server, settings_for
from roles.rke2.lifecycle import confirmed_nodes, remove_from_api, uninstall

profile = current_profile()
names = confirmed_nodes(profile, "remove-node")
first = host_in((RKE2_SERVERS,)) and current_node() == first_server(profile)

if first:
    remove_from_api(names, settings_for(profile, first_server(profile)))
if host_in(CLUSTER):
    join_point(name="Wait until the nodes are out of the cluster", reason=", ".join(names))
if host_in(CLUSTER) and current_node().name in names:
    uninstall()
