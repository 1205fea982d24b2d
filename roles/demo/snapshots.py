"""The baseline's snapshots kept on a data host (root only), beside the Postgres templates: what a reset
returns to without a round trip to the bucket. A capture writes a new directory and swaps it in only when
every snapshot is written, so a capture cut short leaves the previous baseline whole."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from gpuaas.backup.service import RestoreRefused, ServiceHost
from gpuaas.backup.sets import Hashing, ObjectEntry

INDEX = "index.json"


class HostSnapshots:
    """`directory` on one data host: a file per snapshot and `index.json` with each one's sha256, the
    services' figures and checksums at the capture."""

    def __init__(self, target: ServiceHost, directory: str):
        self.target, self.directory = target, directory.rstrip("/")
        self.entries: dict[str, ObjectEntry] = {}

    @property
    def staging(self) -> str:
        return self.directory + ".new"

    def _path(self, name: str, staging: bool = False) -> str:
        return shlex.quote(f"{self.staging if staging else self.directory}/{name}")

    def begin(self) -> None:
        """An empty staging directory, root only (a capture cut short left one: it is discarded)."""
        self.target.shell.run(
            f"rm -rf {shlex.quote(self.staging)} && install -d -m 700 -o root -g root {shlex.quote(self.staging)}",
            "preparing the baseline's snapshot directory",
        )

    def write(self, name: str, stream: IO[bytes]) -> ObjectEntry:
        """Stream one snapshot into the staging directory (mode 600); its size and sha256."""
        hashed = Hashing(stream)
        path = self._path(name, staging=True)
        command = f'umask 077 && mkdir -p "$(dirname {path})" && cat > {path}'
        self.target.shell.feed(command, f"writing the baseline snapshot {name}", hashed)
        entry = ObjectEntry(name, hashed.size, hashed.digest.hexdigest())
        self.entries[name] = entry
        return entry

    def commit(self, index: dict) -> None:
        """The index written last, then the staging directory swapped in for the previous one."""
        index = {**index, "files": {name: vars(entry) for name, entry in sorted(self.entries.items())}}
        body = json.dumps(index, indent=2, sort_keys=True).encode()
        live, new = shlex.quote(self.directory), shlex.quote(self.staging)
        old = shlex.quote(self.directory + ".old")
        self.target.shell.run(
            f"umask 077 && cat > {new}/{INDEX} && rm -rf {old} && "
            f"{{ [ ! -e {live} ] || mv {live} {old}; }} && mv {new} {live} && rm -rf {old}",
            "keeping the captured baseline",
            input=body,
        )

    def index(self) -> dict | None:
        """The captured baseline's index; None when no capture finished on this host."""
        found = self.target.shell.run(
            f"cat {self._path(INDEX)} 2>/dev/null || true", "reading the captured baseline's index"
        )
        return json.loads(found) if found.strip() else None

    @contextmanager
    def open(self, name: str, index: dict) -> Iterator[IO[bytes]]:
        """A snapshot read back; RestoreRefused when leaving the block if it is not what the capture wrote."""
        expected = index["files"].get(name)
        if expected is None:
            raise RestoreRefused(f"{self.target.node.name}: the captured baseline has no snapshot {name}")
        with self.target.shell.reader(f"cat {self._path(name)}", f"reading the baseline snapshot {name}") as raw:
            hashed = Hashing(raw)
            yield hashed
            while hashed.read(1 << 20):
                pass
        if hashed.digest.hexdigest() != expected["sha256"]:
            raise RestoreRefused(
                f"{self.target.node.name}: the baseline snapshot {name} changed since the capture "
                "(its sha256 differs); nothing was reset from it"
            )
