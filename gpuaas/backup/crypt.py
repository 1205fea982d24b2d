"""Client-side encryption of backup objects with age (the `age` program, streaming): objects are
encrypted on the controller before they reach the bucket and decrypted only while being restored.
The identity (private key) comes from a secret reference and reaches `age` through a pipe, never a
file or an argument."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from pyinfra.api.exceptions import DeployError

from gpuaas.backup.transport import CHUNK, Feeder
from gpuaas.secrets import Secret


class EncryptionError(DeployError):
    """age is missing or refused the data; the message says which object."""


def _age() -> str:
    program = shutil.which("age")
    if program is None:
        raise EncryptionError(
            "backup.encryption is set but the `age` program is not installed on the controller "
            "(Debian: apt-get install age)"
        )
    return program


@contextmanager
def _filter(argv: list[str], source: IO[bytes], what: str, pass_fds: tuple[int, ...] = ()) -> Iterator[IO[bytes]]:
    """`source` fed through a program by a thread; yields the program's output stream."""
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=CHUNK, pass_fds=pass_fds
    )
    feeder = Feeder(source, process.stdin)
    try:
        yield process.stdout
        process.stdout.read()
        feeder.finish()
    except BaseException:
        process.kill()
        raise
    finally:
        feeder.join()
        code = process.wait()
        stderr = process.stderr.read().decode(errors="replace").strip()
    if code != 0:
        raise EncryptionError(f"age could not {what}: {stderr or f'exit {code}'}")


def encrypting(source: IO[bytes], recipients: list[str], what: str):
    """`source` encrypted to every recipient (age1... public keys), as a stream."""
    argv = [_age(), "--encrypt"] + [arg for recipient in recipients for arg in ("--recipient", recipient)]
    return _filter(argv, source, f"encrypt {what}")


@contextmanager
def decrypting(source: IO[bytes], identity: Secret, what: str) -> Iterator[IO[bytes]]:
    """`source` decrypted with the identity, as a stream."""
    read_end, write_end = os.pipe()
    try:
        # The identity is a few hundred bytes: it fits the pipe's buffer, so this write never blocks.
        os.write(write_end, identity.reveal().encode() + b"\n")
        os.close(write_end)
        write_end = -1
        argv = [_age(), "--decrypt", "--identity", f"/dev/fd/{read_end}"]
        with _filter(argv, source, f"decrypt {what}", pass_fds=(read_end,)) as plain:
            yield plain
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)
