"""Restore drill: restore the newest complete set (or GPUAAS_BACKUP_SET) beside the live services,
compare with the manifest, and write build/ENV/evidence/restore-drill.json and .md. Live data is
never touched; fails when anything differs.

pyinfra -y inventories/ENV.py deploys/restore_drill.py
"""

from gpuaas.context import host_in
from roles.backup import ROLE
from roles.backup.deploy import restore_drill

if host_in(ROLE.applies_to):
    restore_drill()
