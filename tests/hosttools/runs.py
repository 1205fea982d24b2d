"""Running pyinfra from the tests as an operator does, from the repository's root."""

from __future__ import annotations

import os
import subprocess

from gpuaas.profile import REPO_ROOT


def pyinfra(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`pyinfra -y ARGS`, its output captured; the caller checks the return code."""
    return subprocess.run(
        ["pyinfra", "-y", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
