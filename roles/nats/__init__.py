"""roles/nats: NATS with JetStream, from the pinned nats-server artifact, on the data hosts."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.nats.settings import NatsSettings

ROLE = Role(
    __name__,
    title="NATS JetStream",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=30,
    settings=NatsSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:nats",
    desired="state:desired",
    readback="readback:read_back",
    layer="data services",
    backup="backup",
)
