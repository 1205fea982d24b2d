"""roles/keycloak: Keycloak from the official distribution on OpenJDK, with PostgreSQL, on the data hosts."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, PostgresDatabase, Role, Section
from roles.keycloak.settings import KeycloakSettings

ROLE = Role(
    __name__,
    title="Keycloak",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=70,
    settings=KeycloakSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:keycloak",
    desired="state:desired",
    readback="readback:read_back",
    layer="identity",
    databases=(PostgresDatabase("database", stop=("keycloak",)),),
)
