"""pyinfra inventory for the local environment: the groups of inventories/local.yml, validated first."""

from gpuaas.inventory import load_groups

globals().update(load_groups("local"))
