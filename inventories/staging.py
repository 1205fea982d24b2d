"""pyinfra inventory for the staging environment: the groups of inventories/staging.yml, validated first."""

from gpuaas.inventory import load_groups

globals().update(load_groups("staging"))
