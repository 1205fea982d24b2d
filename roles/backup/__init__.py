"""roles/backup: backup sets of the data services in the profile's bucket, restores, restore drills
(run on the controller; the services' own parts are in their roles' `backup.py`)."""

from gpuaas.groups import CONTROLLER
from gpuaas.role import Phase, Role, Section

#: Its settings are the profile's own `backup:` section (gpuaas.profile.Backup).
ROLE = Role(
    __name__, title="Backup", applies_to=(CONTROLLER,), phase=Phase.CONTROLLER, order=10, section=Section.PROFILE
)
