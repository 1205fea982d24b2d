"""The GPU device lane: the role's detection and verification facts against this machine, without a
profile or a cluster (roles/gpu/README.md, "Device lane").

pyinfra @local deploys/gpu_check.py -v
"""

from roles.gpu.device import device_check

device_check(name="Check this machine's NVIDIA GPUs and driver")
