"""roles/openbao: OpenBao on integrated raft storage with TLS, initialised and unsealed, on the data hosts."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.openbao.settings import OpenBaoSettings

ROLE = Role(
    __name__,
    title="OpenBao",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=40,
    settings=OpenBaoSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:openbao",
    desired="state:desired",
    readback="readback:read_back",
    layer="identity",
    backup="backup",
)
