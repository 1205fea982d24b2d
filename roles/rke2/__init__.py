"""roles/rke2: the RKE2 cluster on its server and agent hosts, from a release pinned by sha256."""

from gpuaas.groups import RKE2_AGENTS, RKE2_SERVERS
from gpuaas.role import Phase, Role, Section
from roles.rke2.settings import Rke2Settings

ROLE = Role(
    __name__,
    title="RKE2",
    applies_to=(RKE2_SERVERS, RKE2_AGENTS),
    phase=Phase.CLUSTER,
    order=10,
    settings=Rke2Settings,
    section=Section.ROLES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:rke2",
    desired="state:desired",
    readback="readback:read_back",
    layer="control plane",
    blocker="release:unpinned",
)
