"""Demo reset: every data service returned to the demo's baseline, verified by checksums. Destructive:
refused in every environment but demo and local, and without the confirmation.

pyinfra inventories/ENV.py deploys/reset.py --dry                          # the plan; nothing changes
GPUAAS_CONFIRM='reset ENV' pyinfra -y inventories/ENV.py deploys/reset.py  # reset to the captured baseline
GPUAAS_RESET=capture GPUAAS_CONFIRM='capture ENV' pyinfra -y ...           # keep the current state as it
GPUAAS_RESET=load GPUAAS_CONFIRM='reset ENV' pyinfra -y ...                # write the repository's baseline
"""

from gpuaas.context import host_in
from roles.demo import ROLE
from roles.demo.deploy import demo_reset

if host_in(ROLE.applies_to):
    demo_reset()
