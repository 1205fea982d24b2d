"""roles/redis: Debian's redis-server with auth and persistence, on the data hosts."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.redis.settings import RedisSettings

ROLE = Role(
    __name__,
    title="Redis",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=20,
    settings=RedisSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:redis",
    desired="state:desired",
    readback="readback:read_back",
    layer="data services",
    backup="backup",
)
