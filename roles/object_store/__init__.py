"""roles/object_store: SeaweedFS (`weed`, S3 API) as the backup target where the profile enables it."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.object_store.settings import ObjectStoreSettings

ROLE = Role(
    __name__,
    title="SeaweedFS (object_store)",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=50,
    settings=ObjectStoreSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
    listeners="listeners:listeners",
    deploy="deploy:object_store",
    desired="state:desired",
    readback="readback:read_back",
    layer="backups",
    checks="checks:problems",
)
