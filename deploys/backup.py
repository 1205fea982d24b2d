"""Backup: one new backup set of every data service in the profile's bucket, then retention.

pyinfra -y inventories/ENV.py deploys/backup.py
"""

from gpuaas.context import host_in
from roles import backup as role
from roles.backup.deploy import backup

if host_in(role.APPLIES_TO):
    backup()
