"""Typed settings of the demo role (the profile's `roles.demo`): every default lives here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.safetext import safe_text

#: The environments a reset is for. Nothing, no flag, makes another one resettable.
RESETTABLE = ("demo", "local")

UnitName = Annotated[
    str, safe_text(r"[A-Za-z0-9@_.-]{1,200}", "a systemd unit name of letters, digits, '@', '_', '.' and '-'")
]
#: A path relative to a directory, never leaving it (no leading '/', no '..').
RELATIVE_PATH = r"(?!/)(?!.*\.\.)[A-Za-z0-9_./-]{1,200}"
RepoPath = Annotated[
    str,
    safe_text(
        RELATIVE_PATH,
        "a directory of the repository, relative to its root, of letters, digits, '_', '.', '/' and '-'",
    ),
]


class DemoSettings(BaseModel):
    """The demo's curated baseline and how a reset returns to it (deploys/reset.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: RepoPath | None = Field(
        default=None,
        description="The baseline's directory in the repository (its baseline.yml and the files it names); "
        "a reset is refused while it is not set.",
    )
    writers: list[UnitName] = Field(
        default=[],
        description="systemd units on the data hosts that write to the services (the product's workers): "
        "stopped before a reset touches anything and started again once it is verified.",
    )
    snapshot_dir: str = Field(
        default="/var/lib/gpuaas/demo-baseline",
        pattern=r"^/var/lib/[A-Za-z0-9_./-]+$",
        description="Where a capture keeps the baseline's snapshots on each data host (root only), for speed.",
    )
