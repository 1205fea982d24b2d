"""Site: what every host of an environment gets, in order: the common baseline, the data services,
then the RKE2 cluster (once the profile pins RKE2's release; until then it says so once per run).

pyinfra inventories/ENV.py deploys/site.py
"""

from pyinfra import local

from gpuaas.context import current_profile, host_in
from gpuaas.report import not_deployed
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
else:
    pins = ", ".join(unpinned)
    not_deployed("RKE2", f"artifacts {pins} are not pinned in {profile.source} (see roles/rke2/README.md)")
