"""roles/postgres: Debian's PostgreSQL on the data hosts, with the platform's roles and databases."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.postgres.settings import PostgresSettings

ROLE = Role(
    __name__,
    title="PostgreSQL",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=10,
    settings=PostgresSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:postgres",
    desired="state:desired",
    readback="readback:read_back",
    layer="data services",
    backup="backup",
    checks="checks:problems",
)
