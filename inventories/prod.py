"""pyinfra inventory for the prod environment: the groups of inventories/prod.yml, validated first."""

from gpuaas.inventory import load_groups

globals().update(load_groups("prod"))
