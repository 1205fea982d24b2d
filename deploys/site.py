"""Site: what every host of an environment gets, in order: the common baseline, the data services,
then the RKE2 cluster (once the profile pins RKE2's release; until then it says so on every run).

pyinfra inventories/ENV.py deploys/site.py
"""

from pyinfra import host, local, logger

from gpuaas.context import current_profile, host_in
from roles import common
from roles.common.deploy import common as common_baseline
from roles.rke2.config import first_server, settings_for
from roles.rke2.release import missing_pins

if host_in(common.APPLIES_TO):
    common_baseline()

local.include("deploys/data.py")

profile = current_profile()
unpinned = missing_pins(profile, settings_for(profile, first_server(profile)))
if not unpinned:
    local.include("deploys/cluster.py")
elif host_in(("rke2_servers", "rke2_agents")):
    logger.warning(f"{host.print_prefix}RKE2 is not deployed: artifacts {', '.join(unpinned)} are not pinned")
