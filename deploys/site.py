"""Site: what every host of an environment gets, in order: the baseline roles, the data services, then
the RKE2 cluster (once the RKE2 role can be deployed; until then it says once per run why not), and
last the readback, which writes the environment's evidence packet (deploys/readback.py).

pyinfra inventories/ENV.py deploys/site.py
"""

from pyinfra import local

from gpuaas.context import current_profile, current_profile_host
from gpuaas.discovery import role_named, roles_in
from gpuaas.report import not_deployed
from gpuaas.role import Phase

profile, node = current_profile(), current_profile_host()
for role in roles_in(Phase.BASELINE):
    if node is not None and role.applies(node):
        role.deploy_function()()

local.include("deploys/data.py")

rke2 = role_named("rke2")
reason = rke2.not_deployed_because(profile)
if reason is None:
    local.include("deploys/cluster.py")
else:
    not_deployed(rke2.title, reason)

local.include("deploys/readback.py")
