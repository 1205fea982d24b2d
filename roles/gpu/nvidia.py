"""What NVIDIA's interfaces print, parsed: sysfs PCI listings, pci.ids names, /proc/driver/nvidia/version,
`nvidia-smi`'s query and header output, and its failures. Pure functions: the facts (roles.gpu.facts)
run the commands, these read what they printed."""

from __future__ import annotations

import re
from dataclasses import dataclass

NVIDIA_VENDOR = "0x10de"
#: PCI classes of a GPU: VGA-compatible and 3D controllers (not NVIDIA's audio functions or NVSwitches).
GPU_CLASSES = ("0x0300", "0x0302")
#: What `nvidia-smi --query-gpu` is asked for, in this order.
QUERY_FIELDS = (
    "index",
    "uuid",
    "name",
    "driver_version",
    "memory.total",
    "compute_cap",
    "persistence_mode",
    "mig.mode.current",
    "mig.mode.pending",
)
#: nvidia-smi's own exit codes (nvidia-smi(1), RETURN VALUE) for the states the role names.
SMI_NO_DEVICES = 6
SMI_NO_DRIVER = 9
SMI_FALLEN_OFF_BUS = 15


@dataclass(frozen=True)
class PciDevice:
    """One NVIDIA PCI function as sysfs shows it."""

    slot: str
    device_id: str
    pci_class: str
    driver: str | None = None
    model: str | None = None

    @property
    def is_gpu(self) -> bool:
        return self.pci_class.startswith(GPU_CLASSES)


def parse_pci_listing(text: str) -> list[PciDevice]:
    """`SLOT VENDOR DEVICE CLASS [DRIVER]` per line (the detection fact's listing of /sys/bus/pci/devices)
    -> the NVIDIA GPUs among them, in slot order."""
    devices = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[1].lower() != NVIDIA_VENDOR:
            continue
        slot, _, device_id, pci_class, *rest = fields
        device = PciDevice(slot, device_id.lower().removeprefix("0x"), pci_class.lower(), rest[0] if rest else None)
        if device.is_gpu:
            devices.append(device)
    return sorted(devices, key=lambda d: d.slot)


def nvidia_names(pci_ids: str) -> dict[str, str]:
    """NVIDIA's device names from pci.ids text (the vendor's block only): device id -> name."""
    names: dict[str, str] = {}
    inside = False
    for line in pci_ids.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            inside = line.startswith("10de ")
            continue
        if inside and not line.startswith("\t\t"):
            device_id, _, name = line.strip().partition(" ")
            names[device_id.lower()] = name.strip()
    return names


def named(devices: list[PciDevice], names: dict[str, str]) -> list[PciDevice]:
    return [PciDevice(d.slot, d.device_id, d.pci_class, d.driver, names.get(d.device_id, d.model)) for d in devices]


@dataclass(frozen=True)
class KernelModule:
    """/proc/driver/nvidia/version: the loaded module's version and flavour."""

    version: str
    open: bool


_NVRM = re.compile(r"NVRM version:\s+NVIDIA UNIX (?:(Open) )?.*?Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)\s")


def parse_proc_version(text: str) -> KernelModule | None:
    """The loaded module from /proc/driver/nvidia/version's text; None when it is empty (not loaded)."""
    match = _NVRM.search(text + " ")
    return KernelModule(match.group(2), match.group(1) is not None) if match else None


@dataclass(frozen=True)
class GpuReading:
    """One GPU as `nvidia-smi --query-gpu` reports it."""

    index: int
    uuid: str
    name: str
    driver_version: str
    memory_mib: int | None
    compute_capability: str | None
    persistence_mode: bool | None
    mig_current: str | None
    mig_pending: str | None

    @property
    def mig_change_pending(self) -> bool:
        return self.mig_pending is not None and self.mig_current is not None and self.mig_pending != self.mig_current


def _value(text: str) -> str | None:
    """A query field, None where nvidia-smi says the GPU has no such thing."""
    text = text.strip()
    return None if text in ("[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "") else text


def parse_smi_query(text: str) -> list[GpuReading]:
    """`nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits` -> one reading per GPU."""
    readings = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(QUERY_FIELDS) or not fields[0].isdigit():
            continue
        index, uuid, name, driver, memory, capability, persistence, mig_current, mig_pending = fields
        memory_value = _value(memory)
        persistence_value = _value(persistence)
        readings.append(
            GpuReading(
                index=int(index),
                uuid=uuid,
                name=name,
                driver_version=driver,
                memory_mib=int(float(memory_value)) if memory_value else None,
                compute_capability=_value(capability),
                persistence_mode=None if persistence_value is None else persistence_value == "Enabled",
                mig_current=_value(mig_current),
                mig_pending=_value(mig_pending),
            )
        )
    return readings


#: R610+ prints "KMD Version" and "CUDA UMD Version" where older drivers print "Driver Version" and "CUDA Version".
_CUDA = re.compile(r"CUDA (?:UMD )?Version:\s*(\d+\.\d+)")
_DRIVER = re.compile(r"(?:Driver|KMD) Version:\s*(\d+\.\d+(?:\.\d+)?)")


def parse_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from the table `nvidia-smi` prints by default."""
    driver, cuda = _DRIVER.search(text), _CUDA.search(text)
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


def smi_failure(exit_code: int, output: str) -> str | None:
    """What a failed nvidia-smi says, in the role's words; None when it succeeded."""
    if exit_code == 0:
        return None
    if "Driver/library version mismatch" in output:
        return "the loaded kernel module and the user-space library differ (Driver/library version mismatch)"
    if exit_code == SMI_NO_DEVICES or "No devices were found" in output:
        return "the driver sees no GPU (No devices were found)"
    if exit_code == SMI_NO_DRIVER or "couldn't communicate with the NVIDIA driver" in output:
        return "nvidia-smi cannot reach the driver (kernel module not loaded)"
    if exit_code == SMI_FALLEN_OFF_BUS or "fallen off the bus" in output or "GPU is lost" in output:
        return "a GPU has fallen off the bus"
    if exit_code == 127:
        return "nvidia-smi is not installed"
    first = next((line.strip() for line in output.splitlines() if line.strip()), "")
    return f"nvidia-smi failed with exit code {exit_code}" + (f": {first[:200]}" if first else "")


_XID = re.compile(r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+),")


def xid_events(kernel_log: str) -> list[tuple[str, int]]:
    """(PCI slot, Xid) of every `NVRM: Xid` line of the kernel log."""
    return [(slot.lower(), int(code)) for slot, code in _XID.findall(kernel_log)]
