"""Test deploy: write a secret to a file with gpuaas.operations.secret_file on the first server: the
local environment's RKE2 token at /root/gpuaas-test-token, or, when GPUAAS_TEST_SECRET is set (by a
test, on the controller), that value to GPUAAS_TEST_SECRET_PATH owned by GPUAAS_TEST_SECRET_GROUP."""

import os

from gpuaas.context import current_profile, host_in
from gpuaas.operations import secret_file
from gpuaas.secrets import Secret, resolve

if host_in(("rke2_servers",)):
    if os.environ.get("GPUAAS_TEST_SECRET"):
        secret = Secret("test_secret", os.environ["GPUAAS_TEST_SECRET"])
        path, group = os.environ["GPUAAS_TEST_SECRET_PATH"], os.environ.get("GPUAAS_TEST_SECRET_GROUP", "root")
    else:
        secret = resolve(current_profile(), current_profile().cluster.token)
        path, group = "/root/gpuaas-test-token", "root"
    secret_file(name="Ensure the test secret file holds its secret", path=path, secret=secret, group=group)
