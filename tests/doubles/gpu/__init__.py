"""The GPU double: the host side of a machine with two NVIDIA H100 GPUs, for the lane's containers, which
have none. It is not a GPU: a sysfs tree of two H100s (0x2330, 3D controller, bound to `nvidia`), an
NVSwitch and an Intel function bind-mounted over /sys/bus/pci/devices; a loaded open kernel module's
/proc/driver/nvidia/version bind-mounted over /proc/driver; and an nvidia-smi in /usr/local/bin that
prints `query.csv` for the role's query (GPU 1 with a MIG change pending) and a table header otherwise.
Everything lives in /run/gpu-double and the mounts end with the container."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ROOT = "/run/gpu-double"
#: slot -> (vendor, device, class, driver)
FUNCTIONS = {
    "0000:18:00.0": ("0x10de", "0x2330", "0x030200", "nvidia"),
    "0000:2a:00.0": ("0x10de", "0x2330", "0x030200", "nvidia"),
    "0000:05:00.0": ("0x10de", "0x22a3", "0x068000", ""),
    "0000:00:1f.0": ("0x8086", "0x1bca", "0x060100", ""),
}
DRIVER = "550.163.01"
CUDA = "12.4"


def nvidia_smi() -> str:
    query = (HERE / "query.csv").read_text()
    return (
        "#!/bin/sh\n# GPU double: prints a fixture, knows no GPU.\n"
        'case "$*" in\n'
        f"  *--query-gpu*) cat <<'CSV'\n{query}CSV\n    ;;\n"
        f"  *) echo '| NVIDIA-SMI {DRIVER}   Driver Version: {DRIVER}   CUDA Version: {CUDA}     |' ;;\n"
        "esac\n"
    )


def install_script() -> str:
    """The shell script (run as root on the host) that puts the double in place; run again, it replaces it."""
    lines = [
        "set -e",
        "umount /sys/bus/pci/devices 2>/dev/null || true",
        "umount /proc/driver 2>/dev/null || true",
        f"rm -rf {ROOT}",
        f"mkdir -p {ROOT}/devices {ROOT}/drivers/nvidia {ROOT}/driver/nvidia",
    ]
    for slot, (vendor, device, pci_class, driver) in FUNCTIONS.items():
        directory = f"{ROOT}/devices/{slot}"
        lines += [f"mkdir -p {directory}"]
        lines += [
            f"echo {value} > {directory}/{name}"
            for name, value in (("vendor", vendor), ("device", device), ("class", pci_class))
        ]
        if driver:
            lines.append(f"ln -s {ROOT}/drivers/{driver} {directory}/driver")
    lines += [
        f"cat > {ROOT}/driver/nvidia/version <<'VERSION'\n{(HERE / 'version').read_text()}VERSION",
        f"cat > /usr/local/bin/nvidia-smi <<'SMI'\n{nvidia_smi()}SMI",
        "chmod 755 /usr/local/bin/nvidia-smi",
        f"mount --bind {ROOT}/devices /sys/bus/pci/devices",
        f"mount --bind {ROOT}/driver /proc/driver",
        # The PCI id database the detection fact names models from: Debian's own package.
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pci.ids >/dev/null",
    ]
    return "\n".join(lines) + "\n"
