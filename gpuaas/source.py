"""The collection's own source revision, for manifests and evidence."""

from __future__ import annotations

import subprocess

from gpuaas.profile import REPO_ROOT


def source_sha() -> str:
    """`git rev-parse HEAD` of the collection, `-dirty` appended when files differ from it; `unknown`
    outside a git checkout."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")
