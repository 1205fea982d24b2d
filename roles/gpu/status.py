"""The honest state of a GPU host: what the detection and driver facts say, compared with the profile, in
the role's words. A reboot that is needed, a module that does not match its library, a MIG change that
waits for a reset, a GPU fallen off the bus and a driver that sees no GPU each have their own finding;
nothing here is ever fixed silently (site.py never reboots)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpuaas.profile import Gpu
from roles.gpu.facts import DriverState
from roles.gpu.nvidia import PciDevice, smi_failure
from roles.gpu.settings import Driver

#: Xid 79: "GPU has fallen off the bus".
XID_FALLEN_OFF_BUS = 79
#: The package whose version is the user-space driver's, per kernel module flavour and family.
USER_SPACE_PACKAGES = ("libnvidia-ml1", "nvidia-smi")
#: Ubuntu's: nvidia-smi comes with nvidia-utils-BRANCH[-server].
UBUNTU_USER_SPACE = re.compile(r"nvidia-utils-[0-9]{3}(-server)?(:amd64)?")


@dataclass(frozen=True)
class Finding:
    """One thing the role found: `ok`, `drift` (differs from the profile), `pending` (waits for a reboot
    or reset) or `failed`."""

    status: str
    message: str


@dataclass(frozen=True)
class Assessment:
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        """The worst finding's status."""
        order = ("failed", "drift", "pending", "ok")
        found = {f.status for f in self.findings}
        return next((status for status in order if status in found), "ok")

    def summary(self) -> str:
        return "; ".join(f.message for f in self.findings)


def installed_driver(state: DriverState, method: str = "distro") -> str | None:
    """The user-space driver's version (`535.261.03`) from its packages; for a preinstalled driver, which
    may have come without any (NVIDIA's .run installer), what nvidia-smi or the loaded module says. None
    when none is found."""
    if method == "preinstalled" and not _packaged(state):
        return state.smi_driver or (state.loaded.version if state.loaded else None)
    return _packaged(state)


def _packaged(state: DriverState) -> str | None:
    for package in USER_SPACE_PACKAGES:
        version = state.packages.get(package) or state.packages.get(f"{package}:amd64")
        if version:
            return version.split("-", 1)[0]
    for package, version in sorted(state.packages.items()):
        if UBUNTU_USER_SPACE.fullmatch(package):
            return version.split("-", 1)[0]
    return None


def device_findings(declared: Gpu, devices: list[PciDevice]) -> list[Finding]:
    if not devices:
        return [Finding("drift", f"the profile declares {declared.count} GPU(s); sysfs shows no NVIDIA GPU")]
    models = ", ".join(sorted({d.model or f"device {d.device_id}" for d in devices}))
    if len(devices) != declared.count:
        return [
            Finding("drift", f"the profile declares {declared.count} GPU(s); sysfs shows {len(devices)} ({models})")
        ]
    return [Finding("ok", f"{len(devices)} GPU(s) on the PCI bus ({models})")]


def module_findings(driver: Driver, state: DriverState) -> list[Finding]:
    """Installed, built, loaded, matching: the first that is not so is the finding."""
    installed = installed_driver(state, driver.method)
    if installed is None:
        missing = {
            "operator": ("ok", "no driver package on the host: the GPU Operator's driver container owns the driver"),
            "preinstalled": ("failed", "no NVIDIA driver found (driver.method is preinstalled: nothing installs one)"),
        }
        status, message = missing.get(driver.method, ("failed", "no driver package installed"))
        return [Finding(status, message)]
    if driver.version and installed != driver.version:
        return [Finding("drift", f"driver {installed} installed; the profile pins {driver.version}")]
    if state.loaded is None:
        if state.built is None and state.headers_candidate is None and state.kernel:
            reason = (
                f"kernel module not built for {state.kernel} (the archive has no linux-headers-{state.kernel}) "
                "and not loaded"
            )
            return [
                Finding(
                    "pending",
                    f"driver {installed} installed; {reason}: reboot required, into a kernel it has headers for",
                )
            ]
        if state.built is None:
            return [Finding("pending", f"driver {installed} installed; kernel module not built for {state.kernel}")]
        return [Finding("pending", f"driver {installed} installed; kernel module not loaded: reboot required")]
    findings = []
    if state.loaded.version != installed:
        findings.append(
            Finding(
                "failed",
                f"kernel module {state.loaded.version} loaded, user-space library {installed}: Driver/library "
                "version mismatch: reboot required",
            )
        )
    elif state.nouveau_loaded:
        findings.append(Finding("pending", "nouveau is loaded: reboot required"))
    else:
        flavour = "open" if state.loaded.open else "proprietary"
        findings.append(Finding("ok", f"driver {installed} loaded ({flavour} kernel module)"))
    return findings


def smi_findings(state: DriverState, declared: Gpu) -> list[Finding]:
    if state.loaded is None:
        return []
    failure = smi_failure(state.smi_exit, state.smi_output)
    if failure is not None:
        return [Finding("failed", failure)]
    findings = []
    for gpu in state.gpus:
        if gpu.mig_change_pending:
            findings.append(
                Finding(
                    "pending",
                    f"GPU {gpu.index}: MIG mode {gpu.mig_current} -> {gpu.mig_pending} pending: "
                    "reset the GPU or reboot",
                )
            )
    if len(state.gpus) != declared.count:
        findings.append(
            Finding("drift", f"nvidia-smi reports {len(state.gpus)} GPU(s); the profile declares {declared.count}")
        )
    return findings


def xid_findings(state: DriverState) -> list[Finding]:
    fallen = sorted({slot for slot, code in state.xids if code == XID_FALLEN_OFF_BUS})
    other = sorted({code for _, code in state.xids if code != XID_FALLEN_OFF_BUS})
    findings = [
        Finding("failed", f"GPU {slot} has fallen off the bus (Xid 79): drain the node and power-cycle it")
        for slot in fallen
    ]
    if other:
        findings.append(Finding("drift", f"the kernel log has Xid {', '.join(map(str, other))} events this boot"))
    return findings


def assess(declared: Gpu, driver: Driver, devices: list[PciDevice], state: DriverState) -> Assessment:
    """Every finding of a GPU host, devices first."""
    findings = device_findings(declared, devices)
    if driver.method != "operator" or installed_driver(state) is not None:
        findings += module_findings(driver, state)
    if driver.method != "operator" or state.smi_exit != 127:
        # The operator's driver container keeps nvidia-smi inside it, not on the host.
        findings += smi_findings(state, declared)
    return Assessment(tuple(findings + xid_findings(state)))
