"""roles/common: the baseline every cluster and data host gets."""

from gpuaas.groups import DATA, RKE2_AGENTS, RKE2_SERVERS
from gpuaas.role import Phase, Role, Section
from roles.common.settings import CommonSettings

ROLE = Role(
    __name__,
    title="Common host baseline",
    applies_to=(RKE2_SERVERS, RKE2_AGENTS, DATA),
    phase=Phase.BASELINE,
    order=10,
    settings=CommonSettings,
    section=Section.ROLES,
    rendered_files="config:rendered_files",
    deploy="deploy:common",
    desired="state:desired",
)
