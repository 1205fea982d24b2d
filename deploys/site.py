"""Site: what every host of an environment gets, in order.

pyinfra inventories/ENV.py deploys/site.py
"""

from pyinfra import local

from gpuaas.context import host_in
from roles import common
from roles.common.deploy import common as common_baseline

if host_in(common.APPLIES_TO):
    common_baseline()

local.include("deploys/data.py")
