"""Readback: what is deployed, read from every host and from the controller, into a signed evidence
packet (build/ENV/evidence/TIME.json, .md, .html, .dsse.json; gpuaas/evidence/README.md). Changes
nothing; also the last step of deploys/site.py.

pyinfra -y inventories/ENV.py deploys/readback.py
GPUAAS_DRIFT_GATE=fail pyinfra -y inventories/ENV.py deploys/readback.py      # fail on drift (CI)
GPUAAS_UAT_PACKAGE=URL GPUAAS_PORTAL_BUILD=ID pyinfra -y ...                    # recorded in the packet
"""

from gpuaas.context import current_profile, current_profile_host, host_in
from gpuaas.evidence.operations import host_read_back, packet_written
from gpuaas.groups import CONTROLLER
from gpuaas.operations import join_point

profile, node = current_profile(), current_profile_host()
if node is not None:
    host_read_back(name="Read back the host for the evidence packet", profile=profile, node=node)
# The controller writes the packet once every host has been read (pyinfra orders each host on its own).
join_point(name="Wait until every host has been read back", reason="every host read back")
if host_in((CONTROLLER,)):
    packet_written(name="Write the evidence packet", profile=profile)
