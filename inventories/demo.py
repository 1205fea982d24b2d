"""pyinfra inventory for the demo environment: the groups of inventories/demo.yml, validated first."""

from gpuaas.inventory import load_groups

globals().update(load_groups("demo"))
