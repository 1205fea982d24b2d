"""Facts roles/object_store reads: the buckets SeaweedFS holds."""

from __future__ import annotations

from pyinfra.api import FactBase


class SeaweedBuckets(FactBase):
    """Bucket names from `weed shell s3.bucket.list`; empty when the server does not answer."""

    default = list

    def command(self, shell_command: str) -> str:
        return f"{shell_command} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return [line.split()[0] for line in output if line.startswith(("  ", "\t")) and line.split()]
