"""roles/edge: the environment's public names in Cloudflare, planned against the live zone, then applied."""

from gpuaas.groups import CONTROLLER
from gpuaas.role import Phase, Role, Section

#: Runs on the controller (pyinfra's @local): it talks to Cloudflare's API, not to a host. Its settings
#: are the profile's own `dns:` section.
ROLE = Role(
    __name__,
    title="Edge (Cloudflare)",
    applies_to=(CONTROLLER,),
    phase=Phase.CONTROLLER,
    order=20,
    section=Section.PROFILE,
    deploy="deploy:edge",
    evidence="readback:evidence_items",
    layer="edge",
)
