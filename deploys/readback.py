"""Readback: what every deployed role reports from its hosts (versions, readiness), changing nothing.
Run with -v to see each report.

pyinfra inventories/ENV.py deploys/readback.py -v
"""

from gpuaas.context import current_profile, current_profile_host
from gpuaas.discovery import all_roles
from gpuaas.operations import read_back

profile, node = current_profile(), current_profile_host()
for role in all_roles():
    if node is not None and role.readback and role.applies(node) and role.not_deployed_because(profile) is None:
        read_back(name=f"Read back {role.title}", role=role, profile=profile, node=node)
