"""Rolling upgrade of the RKE2 cluster to the version the profile pins.

pyinfra inventories/ENV.py deploys/upgrade.py

An etcd snapshot first; then the servers one at a time, then the agents ring by ring (ring 0 first),
at most `rollout.reserve` at once. Each node is cordoned and drained, upgraded, waited for Ready at
the new version and uncordoned; every node must be Ready before the next batch (health gate). The
first failure stops the whole rollout; a re-run skips the nodes already at the pin, so it resumes
where it stopped. A downgrade is refused unless GPUAAS_ALLOW_DOWNGRADE=yes.
"""

import os

from pyinfra import config, host

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.groups import CLUSTER, RKE2_SERVERS
from gpuaas.operations import join_point
from roles.rke2.cluster import cluster_nodes
from roles.rke2.config import first_server, settings_for
from roles.rke2.deploy import rke2
from roles.rke2.upgrade import ALLOW_DOWNGRADE_ENV, drain, readmit, rollout_plan, snapshot

# One failed node stops every host: the rollout must not go on past it.
config.FAIL_PERCENT = 0

profile = current_profile()
first_node = first_server(profile)
first = host_in((RKE2_SERVERS,)) and current_node() == first_node
settings = settings_for(profile, first_node)
target = profile.artifacts[settings.artifact].version if settings.artifact in profile.artifacts else None
batches = rollout_plan(profile, target, allow_downgrade=os.environ.get(ALLOW_DOWNGRADE_ENV) == "yes")

if batches and first:
    snapshot(target)
for index, batch in host.loop(enumerate(batches)):
    if host_in(CLUSTER):
        join_point(name=f"Batch {index + 1}/{len(batches)}: {batch.label}", reason=", ".join(batch.nodes))
    if first:
        drain(batch, settings)
    if host_in(CLUSTER):
        join_point(name=f"Wait until {batch.label} is drained", reason="drained")
    if host_in(CLUSTER) and current_node().name in batch.nodes:
        rke2()
    if host_in(CLUSTER):
        join_point(name=f"Wait until {batch.label} is upgraded", reason="upgraded")
    if first:
        readmit(batch, target, settings, cluster_nodes(profile))
