"""Backup: one new backup set of every data service in the profile's bucket, then retention.

pyinfra -y inventories/ENV.py deploys/backup.py
"""

from gpuaas.context import host_in
from roles.backup import ROLE
from roles.backup.deploy import backup

if host_in(ROLE.applies_to):
    backup()
