"""Rolling upgrades, ring by ring: RKE2 to the version the profile pins (the default), or with
GPUAAS_UPGRADE=gpu-driver the NVIDIA driver of the distro GPU hosts to their pinned `driver.version`.

pyinfra inventories/ENV.py deploys/upgrade.py
GPUAAS_UPGRADE=gpu-driver pyinfra inventories/ENV.py deploys/upgrade.py

RKE2: an etcd snapshot first; then the servers one at a time, then the agents ring by ring (ring 0
first), at most `rollout.reserve` at once. Each node is cordoned and drained, upgraded, waited for Ready
at the new version and uncordoned; every node must be Ready before the next batch (health gate).
The driver: the same batches over the GPU hosts whose loaded module is not the pinned version; each is
drained (where the cluster is deployed), gets the pinned packages, is rebooted, must read back `ok`
(module loaded at the pin, every GPU seen), and is uncordoned behind the same health gate.
The first failure stops the whole rollout; a re-run skips the nodes already at the pin, so it resumes
where it stopped. A downgrade is refused unless GPUAAS_ALLOW_DOWNGRADE=yes.
"""

import os

from pyinfra import config, host
from pyinfra.api.exceptions import DeployError

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.discovery import role_named
from gpuaas.groups import CLUSTER, HOST_GROUPS, RKE2_SERVERS
from gpuaas.operations import join_point
from roles.gpu.upgrade import DRIVER_UPGRADE, driver_plan, upgrade_node
from roles.rke2.cluster import cluster_nodes
from roles.rke2.config import first_server, settings_for
from roles.rke2.deploy import rke2
from roles.rke2.upgrade import ALLOW_DOWNGRADE_ENV, drain, readmit, rollout_plan, snapshot

# One failed node stops every host: the rollout must not go on past it.
config.FAIL_PERCENT = 0

profile = current_profile()
upgrading = os.environ.get("GPUAAS_UPGRADE", "rke2")
if upgrading not in ("rke2", DRIVER_UPGRADE):
    raise DeployError(f"GPUAAS_UPGRADE is rke2 (the default) or {DRIVER_UPGRADE}")
allow_downgrade = os.environ.get(ALLOW_DOWNGRADE_ENV) == "yes"
first_node = first_server(profile)
first = host_in((RKE2_SERVERS,)) and current_node() == first_node
settings = settings_for(profile, first_node)
cluster = role_named("rke2").not_deployed_because(profile) is None
if upgrading == DRIVER_UPGRADE:
    target, batches = driver_plan(profile, allow_downgrade)
    hosts = HOST_GROUPS
else:
    target = profile.artifacts[settings.artifact].version if settings.artifact in profile.artifacts else None
    batches = rollout_plan(profile, target, allow_downgrade=allow_downgrade)
    hosts = CLUSTER

if batches and first and upgrading == "rke2":
    snapshot(target)
for index, batch in host.loop(enumerate(batches)):
    if host_in(hosts):
        join_point(name=f"Batch {index + 1}/{len(batches)}: {batch.label}", reason=", ".join(batch.nodes))
    if first and cluster:
        drain(batch, settings)
    if host_in(hosts):
        join_point(name=f"Wait until {batch.label} is drained", reason="drained")
    if host_in(hosts) and current_node().name in batch.nodes:
        if upgrading == "rke2":
            rke2()
        else:
            upgrade_node(profile, current_node())
    if host_in(hosts):
        join_point(name=f"Wait until {batch.label} is upgraded", reason="upgraded")
    if first and cluster:
        readmit(batch, target if upgrading == "rke2" else None, settings, cluster_nodes(profile))
