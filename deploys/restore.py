"""Restore the data services from a backup set. Destructive: refused without the confirmation.

pyinfra inventories/ENV.py deploys/restore.py --dry                  # the plan: set, services, objects
GPUAAS_CONFIRM='restore ENV' pyinfra -y inventories/ENV.py deploys/restore.py
  GPUAAS_BACKUP_SET=ID              a set other than the newest complete one
  GPUAAS_RESTORE_SERVICES=a,b       only these services (postgres, redis, nats, openbao, temporal)
  GPUAAS_RESTORE_FROM=OTHER_ENV     a set of another environment (refused otherwise), verified with
                                    backup.trusted_manifest_keys.OTHER_ENV
"""

from gpuaas.context import host_in
from roles.backup import ROLE
from roles.backup.deploy import restore

if host_in(ROLE.applies_to):
    restore()
