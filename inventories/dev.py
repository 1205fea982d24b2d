"""pyinfra inventory for the dev environment: the groups of inventories/dev.yml, validated first."""

from gpuaas.inventory import load_groups

globals().update(load_groups("dev"))
