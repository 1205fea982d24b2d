"""Facts roles/common reads: what the kernel has, and where swap is."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

#: An active swap line of /etc/fstab (POSIX ERE, for grep, sed and awk alike).
FSTAB_SWAP_ERE = "^[^#].*[[:space:]]swap[[:space:]]"


class KernelModuleState(FactBase):
    """
    Whether a kernel module is usable: ``loaded`` (in /sys/module), ``builtin`` (in modules.builtin
    or `=y` in the running kernel's config) or ``absent``.
    """

    def command(self, module: str, kconfig: str | None = None) -> str:
        quoted = shlex.quote(module)
        config_check = ""
        if kconfig:
            symbol = shlex.quote(f"^{kconfig}=y$")
            config_check = (
                f" || {{ zcat /proc/config.gz 2>/dev/null; cat /boot/config-$(uname -r) 2>/dev/null; }}"
                f" | grep -qE {symbol}"
            )
        return (
            f"if [ -d /sys/module/{quoted} ]; then echo loaded; "
            f"elif grep -qsE '/{module}\\.ko(\\..*)?$' /lib/modules/$(uname -r)/modules.builtin{config_check}; "
            f"then echo builtin; else echo absent; fi"
        )

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else "absent"


class ActiveSwap(FactBase):
    """Swap devices and files in use (from /proc/swaps)."""

    default = list

    def command(self) -> str:
        return "cat /proc/swaps 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return [line.split()[0] for line in output[1:] if line.strip()]


class FstabSwapEntries(FactBase):
    """Active (uncommented) swap lines in /etc/fstab."""

    default = list

    def command(self) -> str:
        return f"grep -E '{FSTAB_SWAP_ERE}' /etc/fstab 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return [line for line in output if line.strip()]


#: How many packages dpkg left half-installed, unpacked, half-configured or awaiting triggers (what
#: `dpkg --audit` reports, read from its status file at a fraction of the cost), and the updates it
#: did not record (a dpkg killed by a reset host or an interrupted run); "0 0" when none.
DPKG_PENDING = (
    "grep -Ec '^Status: ([a-z]+ reinstreq .*|[a-z]+ [a-z]+ (half-installed|unpacked|half-configured|"
    "triggers-awaited|triggers-pending))$' /var/lib/dpkg/status; ls -A /var/lib/dpkg/updates | wc -l"
)


class DpkgPending(FactBase):
    """Whether dpkg was interrupted and left work for `dpkg --configure -a` (apt refuses to run then)."""

    def command(self) -> str:
        return DPKG_PENDING

    def process(self, output: list[str]) -> bool:
        return " ".join(output).split() != ["0", "0"]
