"""Streams that stand in for a bucket object while a restore reads it."""

from __future__ import annotations

import io


class BreakingStream(io.RawIOBase):
    """A stream that fails half-way, as a bucket connection that drops; it hands out at most 4 KiB a read,
    so a reader sees data arrive before the failure."""

    def __init__(self, data: bytes):
        super().__init__()
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        half = len(self.data) // 2
        if self.position >= half:
            raise ConnectionResetError("the bucket connection dropped")
        size = min(len(buffer), half - self.position, 4096)
        buffer[:size] = self.data[self.position : self.position + size]
        self.position += size
        return size
