"""The readback's operations: each host is read while the deploy runs there, then one host writes the
packet on the controller. Neither changes a host: a site run that ends with them still reports zero
changes."""

from __future__ import annotations

import json
import os

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import DeployError

from gpuaas.evidence import collect, written
from gpuaas.evidence.packet import Status
from gpuaas.profile import REPO_ROOT, Host, Profile

#: Set to `fail` (CI) to fail the readback when anything installed differs from its pin.
DRIFT_GATE_ENV = "GPUAAS_DRIFT_GATE"

#: Host name -> what was read on it during this run.
_READ: dict[str, collect.HostFindings] = {}


@operation()
def host_read_back(profile: Profile, node: Host):
    """
    Change nothing; read the host for the evidence packet (its OS, each deployed role's readback, the
    pinned programs' files), once the deploy runs (not while it is planned).

    + profile: the environment's profile
    + node: the current host's entry in it
    """
    if not host.state.is_executing:
        host.noop("read back when the deploy runs")
        return
    findings = collect.read_host(profile, node)
    _READ[node.name] = findings
    for item in findings.items:
        # What the role read, whole, as `-v` shows it: `TITLE: {json}`.
        read = {**item.observed, "status": item.status.value, "message": item.message}
        host.noop(f"{item.name}: {json.dumps(read, sort_keys=True, default=str)}")
    yield from ()


@operation()
def packet_written(profile: Profile):
    """
    Change no host; write the evidence packet of what every host reported, with the controller's part
    (source, profile digest, artifacts, DNS, backups), as build/ENV/evidence/TIME.json, .md, .html
    and, with `evidence.signing_key`, .dsse.json; upload them when `evidence.upload` is on. With
    GPUAAS_DRIFT_GATE=fail, fails when anything read back differs from the profile.

    + profile: the environment's profile
    """
    if not host.state.is_executing:
        host.noop("the packet is written when the deploy runs")
        return
    packet = collect.packet(profile, [_READ[node.name] for node in profile.hosts if node.name in _READ])
    try:
        paths = written.write(profile, packet)
        uploaded = written.upload(profile, paths) if profile.evidence.upload else []
    except DeployError as error:
        # A signing key that cannot be used, a store that cannot be reached: said, never a traceback.
        yield FunctionCommand(_failed, (str(error),), {})
        return
    for item in packet.items:
        if item.status is not Status.OK:
            colour = "yellow" if item.status is Status.BLOCKED else "red"
            where = f" on {item.host}" if item.host else ""
            host.log_styled(f"{item.status.value}: {item.name}{where}: {item.message}", fg=colour, log_func=logger.info)
    signed = f", signed {paths.envelope.relative_to(REPO_ROOT)}" if paths.envelope else ", unsigned"
    shown = f"{paths.packet.relative_to(REPO_ROOT)} (.md, .html{signed})"
    told = f"evidence {packet.status.value}: {shown}" + (f"; uploaded {len(uploaded)} files" if uploaded else "")
    logger.info(f"{host.print_prefix}{told}")
    host.noop(told)
    drifted = packet.drifted()
    if drifted and os.environ.get(DRIFT_GATE_ENV) == "fail":
        yield FunctionCommand(
            _failed, (f"drift gate: {len(drifted)} differ from the profile: " + "; ".join(drifted),), {}
        )


def _failed(state, host, message: str) -> bool:
    host.log_styled(message, fg="red", log_func=logger.error)
    return False
