"""Revoke the environment's Origin CA certificates at Cloudflare and remove them (and their keys) from
the hosts. Destructive: refused without the confirmation.

GPUAAS_CONFIRM='revoke-origin-certificates staging' pyinfra inventories/staging.py deploys/revoke_origin_certs.py
"""

import os

from pyinfra.api.exceptions import DeployError

from gpuaas.context import current_profile, host_in
from roles.edge.origin import revoked_origin_certificate

profile = current_profile()
wanted = f"revoke-origin-certificates {profile.name}"
if os.environ.get("GPUAAS_CONFIRM") != wanted:
    raise DeployError(f"revoking is refused without GPUAAS_CONFIRM='{wanted}'; nothing was changed")

origin = profile.dns.origin_certificates
if origin is not None and host_in((origin.hosts_group,)):
    revoked_origin_certificate(name="Ensure the Origin CA certificate is revoked", profile=profile)
