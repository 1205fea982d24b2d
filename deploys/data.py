"""Data services on the `data` hosts, outside the cluster's lifecycle. Every service's state is checked
in one round trip per host first; a service the profile turns off is reported once, with the
reason, and left alone.

pyinfra inventories/ENV.py deploys/data.py
"""

from gpuaas.context import current_profile, current_profile_host
from gpuaas.discovery import roles_in
from gpuaas.managed import probes_of
from gpuaas.probe import prefetch
from gpuaas.report import not_deployed
from gpuaas.role import Phase

profile, node = current_profile(), current_profile_host()
deployed = []
for role in roles_in(Phase.DATA):
    if node is None or not role.applies(node):
        continue
    reason = role.not_deployed_because(profile)
    if reason is None:
        deployed.append(role)
    else:
        not_deployed(role.label(profile), reason)

if deployed:
    prefetch([probes_of(role.items(profile, node)) for role in deployed])
for role in deployed:
    role.deploy_function()()
