"""Edge: the environment's public names in Cloudflare, the zone's TLS mode (on the controller), and
Origin CA certificates on the hosts that terminate TLS.

pyinfra inventories/ENV.py deploys/edge.py --dry     # the plan (also in build/ENV/dns-plan.json)
pyinfra inventories/ENV.py deploys/edge.py           # apply it
"""

from gpuaas.context import current_profile, host_in
from roles.edge import ROLE
from roles.edge.deploy import edge as cloudflare_edge
from roles.edge.origin import origin_certificate

if host_in(ROLE.applies_to):
    cloudflare_edge()

origin = current_profile().dns.origin_certificates
if origin is not None and host_in((origin.hosts_group,)):
    origin_certificate(name="Ensure the Origin CA certificate is current", profile=current_profile(), settings=origin)
