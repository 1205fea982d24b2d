"""Run on a test host as an unprivileged account while a converge runs: record everything that account
could read of it. Every file created, moved or written under the watched directories (inotify; each
opened the moment it appears, so a file removed right after still counts) and every process's
command line (/proc, polled). SIGTERM ends the watch and writes the record as JSON.

    python3 secret_watcher.py RECORD.json DIR [DIR ...]

The record holds the content of each readable file up to SMALL bytes (larger ones by size and
sha256), the files that could not be read (and why), the directories that could not be watched,
and every distinct command line. Standard library only: the host has nothing else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import select
import signal
import struct
import sys

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
IN_ISDIR = 0x40000000
EVENT = struct.Struct("iIII")
SMALL = 4 << 20
POLL_SECONDS = 0.002

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Watch:
    def __init__(self, directories: list[str]):
        self.inotify = libc.inotify_init1(os.O_NONBLOCK)
        self.directories: dict[int, str] = {}
        self.held: dict[str, list[int]] = {}
        self.contents: dict[str, set[bytes]] = {}
        self.unreadable: dict[str, str] = {}
        self.unwatchable: dict[str, str] = {}
        self.cmdlines: set[str] = set()
        for directory in directories:
            self.watch_tree(directory)

    def watch_tree(self, top: str) -> None:
        for directory, _, files in os.walk(top, onerror=lambda error: self._unwatchable(error)):
            self.watch(directory)
            for name in files:
                self.hold(os.path.join(directory, name))

    def _unwatchable(self, error: OSError) -> None:
        self.unwatchable[error.filename] = errno.errorcode.get(error.errno, str(error.errno))

    def watch(self, directory: str) -> None:
        mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY
        descriptor = libc.inotify_add_watch(self.inotify, directory.encode(), mask)
        if descriptor < 0:
            self.unwatchable[directory] = errno.errorcode.get(ctypes.get_errno(), "?")
        else:
            self.directories[descriptor] = directory

    def hold(self, path: str) -> None:
        """Open the file now (a descriptor keeps it readable after it is removed)."""
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ELOOP):
                self.unreadable[path] = errno.errorcode.get(error.errno, str(error.errno))
            return
        self.held.setdefault(path, []).append(descriptor)
        self.read(path)

    def read(self, path: str) -> None:
        for descriptor in self.held.get(path, []):
            try:
                size = os.fstat(descriptor).st_size
                if size <= SMALL:
                    self.contents.setdefault(path, set()).add(os.pread(descriptor, size, 0))
                else:
                    digest = hashlib.sha256()
                    offset = 0
                    while chunk := os.pread(descriptor, 1 << 20, offset):
                        digest.update(chunk)
                        offset += len(chunk)
                    self.contents.setdefault(path, set()).add(f"sha256:{digest.hexdigest()} {size}".encode())
            except OSError:
                pass

    def events(self) -> None:
        try:
            data = os.read(self.inotify, 1 << 16)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            descriptor, mask, _, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size : offset + EVENT.size + length].rstrip(b"\0").decode(errors="replace")
            offset += EVENT.size + length
            directory = self.directories.get(descriptor)
            if directory is None or not name:
                continue
            path = os.path.join(directory, name)
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self.watch_tree(path)
            elif mask & (IN_CREATE | IN_MOVED_TO):
                self.hold(path)
            else:
                self.read(path)

    def processes(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    line = handle.read()
            except OSError:
                continue
            if line:
                self.cmdlines.add(line.replace(b"\0", b" ").decode(errors="replace").strip())

    def record(self) -> dict:
        for path in self.held:
            self.read(path)
        return {
            "files": {path: sorted(c.decode("latin-1") for c in contents) for path, contents in self.contents.items()},
            "unreadable": self.unreadable,
            "unwatchable": self.unwatchable,
            "cmdlines": sorted(self.cmdlines),
        }


def main() -> None:
    target, directories = sys.argv[1], sys.argv[2:]
    watch = Watch(directories)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    with open(f"{target}.ready", "w") as ready:
        ready.write("watching\n")
    while running[0]:
        try:
            select.select([watch.inotify], [], [], POLL_SECONDS)
        except InterruptedError:
            pass
        watch.events()
        watch.processes()
    watch.events()
    with open(target, "w") as handle:
        json.dump(watch.record(), handle)


if __name__ == "__main__":
    main()
