"""roles/gpu_stack: the GPU stack in the cluster (the NVIDIA GPU Operator, or the standalone device
plugin) as HelmChart resources in the servers' manifests directory, and the driver owner's node labels."""

from gpuaas.groups import RKE2_SERVERS
from gpuaas.role import Phase, Role, Section
from roles.gpu_stack.settings import GpuStackSettings

ROLE = Role(
    __name__,
    title="GPU stack",
    applies_to=(RKE2_SERVERS,),
    phase=Phase.CLUSTER,
    order=20,
    settings=GpuStackSettings,
    section=Section.ROLES,
    rendered_files="config:rendered_files",
    deploy="deploy:gpu_stack",
    desired="state:desired",
    readback="readback:read_back",
    layer="GPU",
    checks="checks:problems",
    blocker="config:unpinned_rke2",
)
