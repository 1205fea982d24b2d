"""Typed settings of roles/gpu (the profile's `roles.gpu`, overridden per host by `hosts[].roles.gpu`):
every default lives here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from gpuaas.safetext import safe_text

#: A driver branch: NVIDIA's major version (535, 550, 570).
Branch = Annotated[str, safe_text(r"[0-9]{3}", "a driver branch: NVIDIA's major version, three digits")]
#: An exact driver version (535.261.03).
DriverVersion = Annotated[
    str,
    safe_text(
        r"[0-9]{3}\.[0-9]{1,3}(\.[0-9]{1,3})?",
        "a driver version: BRANCH.MINOR[.PATCH], the branch's three digits, then one to three digits per part",
    ),
]
#: An apt archive component.
Component = Annotated[str, safe_text(r"[a-z][a-z0-9-]{0,31}", "an archive component of a-z, 0-9 and '-'")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Driver(_Strict):
    """Who installs the NVIDIA driver on a GPU host, and which one. Exactly one owner: the host's packages
    (`distro`), the operator of the machine before this collection (`preinstalled`), or the GPU Operator's
    driver container (`operator`)."""

    method: Literal["distro", "preinstalled", "operator"] = Field(
        default="distro",
        description="`distro`: the distribution's packages (Debian non-free, Ubuntu's -server family), pinned "
        "to the branch and held; `preinstalled`: verified only, nothing installed; `operator`: the GPU "
        "Operator's driver container (roles/gpu_stack), the host only gets nouveau blacklisted.",
    )
    branch: Branch = Field(
        default="535",
        description="The driver branch apt preferences pin the packages to (Debian bookworm: 535; trixie: 550).",
    )
    version: DriverVersion | None = Field(
        default=None,
        description="The exact driver version the driver's packages are pinned to (bookworm: 535.261.03); None "
        "takes the branch's newest in the archive. Packages of their own release cycle (nvidia-persistenced) "
        "follow the branch.",
    )
    kernel_modules: Literal["proprietary", "open"] = Field(
        default="proprietary",
        description="NVIDIA's proprietary kernel modules, or the open ones (Turing and newer; Debian trixie's "
        "nvidia-open-kernel-dkms, Ubuntu's -open packages).",
    )
    persistenced: bool = Field(
        default=True, description="nvidia-persistenced installed, enabled and running (keeps GPUs initialised)."
    )
    kernel_headers: bool = Field(
        default=True,
        description="Install the headers of the running kernel so DKMS builds the module (reported when the "
        "archive has none for it).",
    )


class GpuSettings(_Strict):
    """The NVIDIA driver on the hosts whose profile entry declares `gpu:`: detected from sysfs, installed
    by its one owner, and read back with its honest state."""

    driver: Driver = Field(default_factory=Driver, description="The driver's owner and version.")
    mirror: AnyHttpUrl | None = Field(
        default=None,
        description="The archive the role's own apt source names (None: the mirror the host's sources name).",
    )
    components: list[Component] | None = Field(
        default=None,
        description="The archive components the driver comes from (None: Debian's contrib, non-free and "
        "non-free-firmware; Ubuntu's restricted and multiverse).",
    )
    on_mismatch: Literal["report", "fail"] = Field(
        default="report",
        description="A host whose detected GPUs differ from its `gpu:` entry (none, or another count): `report` "
        "it, or `fail` the host's run before anything is installed; with `fail` the run also fails when the "
        "host's state after the converge is `failed` or `drift` (a version mismatch, a GPU fallen off the bus).",
    )
