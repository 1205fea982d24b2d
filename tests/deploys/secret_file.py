"""Test deploy: write the local environment's RKE2 token to a file with gpuaas.operations.secret_file."""

from gpuaas.context import current_profile, host_in
from gpuaas.operations import secret_file
from gpuaas.secrets import resolve

if host_in(("rke2_servers",)):
    secret_file(
        name="Ensure the test token file holds the RKE2 token",
        path="/root/gpuaas-test-token",
        secret=resolve(current_profile(), current_profile().cluster.token),
    )
