"""Edge: the environment's public names in Cloudflare and the zone's TLS mode, run on the controller.

pyinfra inventories/ENV.py deploys/edge.py --dry     # the plan (also in build/ENV/dns-plan.json)
pyinfra inventories/ENV.py deploys/edge.py           # apply it
"""

from gpuaas.context import host_in
from roles import edge
from roles.edge.deploy import edge as cloudflare_edge

if host_in(edge.APPLIES_TO):
    cloudflare_edge()
