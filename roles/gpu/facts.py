"""Facts roles/gpu reads from a host: the NVIDIA GPUs sysfs shows (the detection fact) and the driver's
state (packages, kernel module, nvidia-smi, the kernel log). Each runs one command and changes nothing;
roles.gpu.nvidia parses what they print."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

from roles.gpu.nvidia import (
    QUERY_FIELDS,
    GpuReading,
    KernelModule,
    PciDevice,
    named,
    nvidia_names,
    parse_pci_listing,
    parse_proc_version,
    parse_smi_header,
    parse_smi_query,
    xid_events,
)

#: Where Debian (pciutils, pci.ids) and other distributions keep the PCI id database.
PCI_IDS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
#: The packages the driver state lists: the driver's, the persistence daemon's and the kernel headers.
PACKAGE_PATTERNS = (
    "nvidia-*",
    "libnvidia-*",
    "libcuda1",
    "firmware-nvidia-*",
    "linux-headers-*",
    "linux-modules-nvidia-*",
)
SMI_QUERY = f"nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits"


def _tagged(output: list[str], tag: str) -> list[str]:
    """The lines of `output` that start with `tag `, without it."""
    prefix = f"{tag} "
    return [line[len(prefix) :] for line in output if line.startswith(prefix)]


class NvidiaDevices(FactBase):
    """The NVIDIA GPUs on the host's PCI bus, from sysfs (`/sys/bus/pci/devices/*`, vendor 0x10de, display
    or 3D class), with the kernel driver bound to each and its model name from pci.ids where the host has
    it. An empty list on a host without one."""

    default = list

    def command(self) -> str:
        ids = " ".join(PCI_IDS)
        return (
            'devs=""; for d in /sys/bus/pci/devices/*; do '
            '[ -r "$d/vendor" ] && [ "$(cat "$d/vendor")" = 0x10de ] || continue; '
            'drv=""; [ -e "$d/driver" ] && drv=$(basename "$(readlink -f "$d/driver")"); '
            'dev=$(cat "$d/device"); '
            'echo "device ${d##*/} 0x10de $dev $(cat "$d/class") $drv"; devs="$devs ${dev#0x}"; done; '
            f"ids=$(ls {ids} 2>/dev/null | head -n 1); "
            'if [ -n "$devs" ] && [ -n "$ids" ]; then '
            'awk -v devs="$devs" \'BEGIN {n = split(devs, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1} '
            '/^10de / {v = 1; print; next} /^[0-9a-f]/ {v = 0} v && /^\\t[^\\t]/ && ($1 in w)\' "$ids" '
            "| sed 's/^/name /'; fi; true"
        )

    def process(self, output: list[str]) -> list[PciDevice]:
        devices = parse_pci_listing("\n".join(_tagged(output, "device")))
        return named(devices, nvidia_names("\n".join(_tagged(output, "name"))))


@dataclass(frozen=True)
class DriverState:
    """What the host says of its NVIDIA driver."""

    kernel: str | None = None
    #: The loaded kernel module (/proc/driver/nvidia/version); None when none is loaded.
    loaded: KernelModule | None = None
    #: The module's version built for the running kernel (modinfo); None when DKMS built none.
    built: str | None = None
    nouveau_loaded: bool = False
    #: Installed package -> version.
    packages: dict[str, str] = field(default_factory=dict)
    held: frozenset[str] = frozenset()
    #: The archive's candidate of the running kernel's headers package (None: it has none).
    headers_candidate: str | None = None
    smi_exit: int = 127
    smi_output: str = ""
    gpus: tuple[GpuReading, ...] = ()
    smi_driver: str | None = None
    cuda: str | None = None
    xids: tuple[tuple[str, int], ...] = ()
    persistenced: str | None = None


class NvidiaDriver(FactBase):
    """The NVIDIA driver's state on the host: the running kernel, the loaded and the built module, nouveau,
    the driver's packages and holds, whether the archive has the kernel's headers, `nvidia-smi`'s query
    (exit code and output), its header's driver and CUDA versions, the kernel log's Xid events of this
    boot, and nvidia-persistenced."""

    def command(self) -> str:
        patterns = " ".join(shlex.quote(p) for p in PACKAGE_PATTERNS)
        return (
            'echo "kernel $(uname -r)"; '
            "[ -r /proc/driver/nvidia/version ] && sed 's/^/proc /' /proc/driver/nvidia/version; "
            '[ -d /sys/module/nouveau ] && echo "nouveau loaded"; '
            "m=$(modinfo -F version nvidia-current 2>/dev/null || modinfo -F version nvidia 2>/dev/null); "
            '[ -n "$m" ] && echo "built $m"; '
            f"dpkg-query -W -f '${{db:Status-Abbrev}} ${{Package}} ${{Version}}\\n' {patterns} 2>/dev/null "
            '| awk \'$1 == "ii" {print "package", $2, $3}\'; '
            "apt-mark showhold 2>/dev/null | sed 's/^/held /'; "
            "c=$(apt-cache policy \"linux-headers-$(uname -r)\" 2>/dev/null | awk '/Candidate:/ {print $2}'); "
            'echo "headers ${c:-none}"; '
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            f"out=$({SMI_QUERY} 2>&1); echo \"smi-exit $?\"; printf '%s\\n' \"$out\" | sed 's/^/smi /'; "
            "nvidia-smi 2>/dev/null | grep -E 'Driver Version|CUDA Version' | sed 's/^/header /'; "
            'else echo "smi-exit 127"; fi; '
            "journalctl -k -b -o cat --no-pager 2>/dev/null | grep 'NVRM: Xid' | tail -n 20 | sed 's/^/xid /'; "
            "systemctl is-active nvidia-persistenced 2>/dev/null | sed 's/^/persistenced /'; true"
        )

    def process(self, output: list[str]) -> DriverState:
        packages = dict(line.split(" ", 1) for line in _tagged(output, "package") if " " in line)
        headers = (_tagged(output, "headers") or ["none"])[0]
        smi_output = "\n".join(_tagged(output, "smi"))
        smi_exit = int((_tagged(output, "smi-exit") or ["127"])[0])
        driver, cuda = parse_smi_header("\n".join(_tagged(output, "header")))
        return DriverState(
            kernel=(_tagged(output, "kernel") or [None])[0],
            loaded=parse_proc_version("\n".join(_tagged(output, "proc"))),
            built=(_tagged(output, "built") or [None])[0],
            nouveau_loaded="nouveau loaded" in output,
            packages=packages,
            held=frozenset(_tagged(output, "held")),
            headers_candidate=None if headers in ("none", "(none)") else headers,
            smi_exit=smi_exit,
            smi_output=smi_output,
            gpus=tuple(parse_smi_query(smi_output)) if smi_exit == 0 else (),
            smi_driver=driver,
            cuda=cuda,
            xids=tuple(xid_events("\n".join(_tagged(output, "xid")))),
            persistenced=(_tagged(output, "persistenced") or [None])[0],
        )


class GpuHost(FactBase):
    """NvidiaDevices and NvidiaDriver in one round trip: (devices, the driver's state)."""

    def command(self) -> str:
        return f"{NvidiaDevices().command()}; {NvidiaDriver().command()}"

    def process(self, output: list[str]) -> tuple[list[PciDevice], DriverState]:
        return NvidiaDevices().process(output), NvidiaDriver().process(output)
