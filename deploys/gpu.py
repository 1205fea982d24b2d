"""GPU hosts: the NVIDIA driver on every host whose profile entry declares `gpu:` (and what it says of its
state), then, where the RKE2 cluster is deployed, the GPU stack in it. deploys/site.py does the same as
part of the whole site; this deploy is for a GPU change alone. It never reboots: a host that needs one
says so.

pyinfra inventories/ENV.py deploys/gpu.py
GPUAAS_GPU_SAMPLE=yes pyinfra inventories/ENV.py deploys/gpu.py    (and a CUDA sample pod on each GPU node)
"""

import os

from gpuaas.context import current_profile, current_profile_host
from gpuaas.discovery import role_named
from roles.gpu_stack.sample import SAMPLE_ENV, run_samples
from roles.rke2.config import first_server

profile, node = current_profile(), current_profile_host()
gpu, stack = role_named("gpu"), role_named("gpu_stack")
if node is not None and gpu.applies(node):
    gpu.deploy_function()()
if node is not None and stack.applies(node) and stack.not_deployed_because(profile) is None:
    stack.deploy_function()()
    if node == first_server(profile) and os.environ.get(SAMPLE_ENV) == "yes":
        run_samples(profile)
