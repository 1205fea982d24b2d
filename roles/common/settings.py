"""Typed settings of the common role: every default the role applies lives here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.safetext import AbsolutePath, HostAddress, PackageName, safe_text

ModuleName = Annotated[str, safe_text(r"[a-z0-9_]+", "a kernel module name of a-z, 0-9 and '_'")]
SysctlKey = Annotated[
    str,
    safe_text(
        r"[a-z0-9_]+(\.[a-z0-9_-]+)+",
        "a kernel parameter name: dot-separated parts of a-z, 0-9, '_' (and '-' after the first part)",
    ),
]
SysctlValue = Annotated[
    str,
    safe_text(
        r"[A-Za-z0-9._:/,-]+( [A-Za-z0-9._:/,-]+)*",
        "a kernel parameter value: "
        "words of letters, digits, '.', '_', ':', '/', ',' and '-' separated by "
        "single spaces",
    ),
]
KconfigSymbol = Annotated[str, safe_text(r"CONFIG_[A-Z0-9_]+", "a kernel config symbol (CONFIG_ and A-Z, 0-9, '_')")]
UnixName = Annotated[
    str,
    safe_text(
        r"[a-z_][a-z0-9_-]{0,31}", "a user name: up to 32 of a-z, 0-9, '_' and '-', not starting with a digit or '-'"
    ),
]
Size = Annotated[str, safe_text(r"[0-9]+[KMGT]?", "a size: digits, optionally followed by K, M, G or T")]
Duration = Annotated[
    str,
    safe_text(
        r"[0-9]+(s|min|h|day|week|month|year)", "a duration: digits followed by s, min, h, day, week, month or year"
    ),
]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KernelModule(_Settings):
    """A kernel module RKE2 needs, and the kernel option that builds it in."""

    name: ModuleName = Field(description="Module name as modprobe knows it.")
    kconfig: KconfigSymbol | None = Field(
        default=None,
        description="Kernel config symbol; when the running kernel has it `=y` the module is built in "
        "and nothing is loaded.",
    )


class TimeSync(_Settings):
    """chrony, the NTP client every node runs."""

    servers: list[HostAddress] = Field(
        default=["0.debian.pool.ntp.org", "1.debian.pool.ntp.org", "2.debian.pool.ntp.org"],
        description="NTP servers chrony polls (`server NAME iburst`).",
    )
    control_clock: bool = Field(
        default=True,
        description="Let chronyd set the system clock; false runs it with `-x` (hosts whose clock "
        "belongs to a hypervisor or container host).",
    )


class Journald(_Settings):
    """Limits for systemd-journald's persistent storage."""

    system_max_use: Size = Field(default="1G", description="SystemMaxUse=.")
    system_keep_free: Size = Field(default="2G", description="SystemKeepFree=.")
    max_retention: Duration = Field(default="14day", description="MaxRetentionSec=.")


class ServiceAccount(_Settings):
    """The unprivileged system account that owns the platform's files."""

    name: UnixName = Field(default="gpuaas", description="User and group name.")
    home: AbsolutePath = Field(default="/var/lib/gpuaas", description="Home and state directory.")


class CommonSettings(_Settings):
    """Settings of roles/common, the baseline every host gets."""

    packages: list[PackageName] = Field(
        default=["ca-certificates", "curl", "chrony", "conntrack", "iptables", "socat", "ethtool", "kmod", "jq"],
        description="Debian packages installed on every host.",
    )
    apt_cache_seconds: int = Field(
        default=3600, ge=0, description="Skip `apt-get update` when the package lists are younger than this."
    )
    apt_lock_timeout_seconds: int = Field(
        default=300, ge=0, description="How long apt and dpkg wait for another one (an interrupted run) to finish."
    )
    time_sync: TimeSync = Field(default_factory=TimeSync, description="Time synchronisation with chrony.")
    kernel_modules: list[KernelModule] = Field(
        default=[
            KernelModule(name="overlay", kconfig="CONFIG_OVERLAY_FS"),
            KernelModule(name="br_netfilter", kconfig="CONFIG_BRIDGE_NETFILTER"),
        ],
        description="Modules loaded now and at boot (/etc/modules-load.d/gpuaas.conf).",
    )
    sysctls: dict[SysctlKey, SysctlValue] = Field(
        default={
            "net.bridge.bridge-nf-call-ip6tables": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.ip_forward": "1",
        },
        description="Kernel parameters applied now and at boot (/etc/sysctl.d/90-gpuaas.conf).",
    )
    swap_off: bool = Field(
        default=True,
        description="Turn swap off now and keep fstab swap entries "
        "commented out (the kubelet refuses swap by default).",
    )
    journald: Journald = Field(default_factory=Journald, description="journald storage limits.")
    service_account: ServiceAccount = Field(
        default_factory=ServiceAccount, description="The platform's system account."
    )
