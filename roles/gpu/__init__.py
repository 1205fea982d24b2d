"""roles/gpu: the NVIDIA driver on the hosts whose profile entry declares `gpu:`, detected from sysfs,
installed by its one owner and read back with its honest state."""

from gpuaas.groups import RKE2_AGENTS, RKE2_SERVERS
from gpuaas.role import Phase, Role, Section
from roles.gpu.settings import GpuSettings

ROLE = Role(
    __name__,
    title="GPU",
    applies_to=(RKE2_SERVERS, RKE2_AGENTS),
    # After the baseline's packages and kernel settings, before the cluster: RKE2 finds the runtime at start.
    phase=Phase.BASELINE,
    order=50,
    settings=GpuSettings,
    section=Section.ROLES,
    rendered_files="config:rendered_files",
    deploy="deploy:gpu",
    desired="state:desired",
    readback="readback:read_back",
    layer="GPU",
    checks="checks:problems",
)
