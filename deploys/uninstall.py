"""Uninstall RKE2 from nodes with its own uninstall script, without touching the cluster's API (for a
node that is already out of the cluster, or a whole environment going away). Destructive: refused
without the confirmation. To take a node out of a running cluster, use deploys/remove_node.py.

GPUAAS_NODES=dev-1 GPUAAS_CONFIRM='uninstall dev dev-1' pyinfra inventories/dev.py deploys/uninstall.py
"""

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.groups import CLUSTER
from roles.rke2.lifecycle import confirmed_nodes, uninstall

names = confirmed_nodes(current_profile(), "uninstall", allow_first_server=True)

if host_in(CLUSTER) and current_node().name in names:
    uninstall()
