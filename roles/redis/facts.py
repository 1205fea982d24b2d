"""Facts roles/redis reads back: the running server's version and readiness."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class RedisInfo(FactBase):
    """`INFO server` of the running Redis as a dict (redis_version, ...), or None when it does not answer.
    The password file is read on the host into the environment of redis-cli, never into a command line."""

    def command(self, port: int, auth_file: str) -> str:
        read_password = f"sed -n 's/^requirepass \"\\(.*\\)\"$/\\1/p' {shlex.quote(auth_file)}"
        return f'REDISCLI_AUTH="$({read_password})" redis-cli -p {int(port)} --no-auth-warning INFO server || true'

    def process(self, output: list[str]) -> dict | None:
        info = dict(line.split(":", 1) for line in output if ":" in line and not line.startswith("#"))
        return {key: value.strip() for key, value in info.items()} or None
