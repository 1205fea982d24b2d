"""Deploy of roles/common: packages, time sync, names, kernel settings, swap, journald, service account."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.common.state import desired

WHAT = "the common baseline"


@deploy("Common host baseline")
def common() -> None:
    converge(WHAT, desired(current_profile(), current_node()))
