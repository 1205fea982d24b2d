"""roles/temporal: the Temporal service on the data hosts (dev mode: the CLI's embedded server on SQLite)."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, PostgresDatabase, Role, Section
from roles.temporal.settings import TemporalSettings


def _server_mode(settings: TemporalSettings) -> bool:
    return settings.mode == "server"


ROLE = Role(
    __name__,
    title="Temporal",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=60,
    settings=TemporalSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:temporal",
    desired="state:desired",
    readback="readback:read_back",
    layer="data services",
    backup="backup",
    # Dev mode keeps its state in its own SQLite file; either mode's unit is stopped while Postgres restores.
    databases=(
        PostgresDatabase("database", stop=("temporal", "temporal-server"), when=_server_mode),
        PostgresDatabase("visibility_database", stop=("temporal", "temporal-server"), when=_server_mode),
    ),
    detail="config:mode_label",
)
