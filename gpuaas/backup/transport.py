"""Commands on a profile host with their standard input and output streamed to and from the
controller (`ssh` with the profile's connection settings and `sudo -n`; `docker exec -i` for
`connection.kind: docker`), so that a dump flows from the host
to the bucket, and back, without ever being held whole in memory or written to the controller's disk."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pyinfra.api.exceptions import DeployError

from gpuaas.connection import ssh_argv
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret

#: Read from a pipe in pieces of this size: large enough for throughput, small against the memory budget.
CHUNK = 1 << 20


class HostCommandError(DeployError):
    """A command on a host failed; the message names the host, what was being done and its stderr."""


class HostShell:
    """Runs `sh -c COMMAND` as root on one profile host.

    A secret a command needs (a password, a token) is written as the first line of its standard input
    and taken with `read -r`, so it never shows in a process listing, an argument or a log."""

    def __init__(self, profile: Profile, node: Host, shared: bool = False):
        """With `shared`, every command goes over one SSH connection (opened by the first, closed by
        `close`): for runs of many short commands, where logging in each time would cost most."""
        self.profile, self.node = profile, node
        self.socket_dir = Path(tempfile.mkdtemp(prefix="gpuaas-ssh-")) if shared else None

    def argv(self, command: str) -> list[str]:
        if self.profile.connection.kind == "docker":
            return ["docker", "exec", "-i", self.node.name, "sh", "-c", command]
        return ssh_argv(self.profile, self.node, command, self.socket_dir)

    def close(self) -> None:
        """The shared connection closed and its socket directory removed (nothing when not shared)."""
        if self.socket_dir is None:
            return
        if self.profile.connection.kind != "docker":
            stop = ssh_argv(self.profile, self.node, "true", self.socket_dir)
            subprocess.run([*stop[:-2], "-O", "exit", stop[-2]], capture_output=True, check=False)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.socket_dir = None

    def run(self, command: str, what: str, secret: Secret | None = None, input: bytes = b"") -> str:
        """Run a short command and return its standard output (text); HostCommandError when it fails."""
        stdin = (secret.reveal().encode() + b"\n" if secret is not None else b"") + input
        done = subprocess.run(self.argv(command), input=stdin, capture_output=True, check=False)
        if done.returncode != 0:
            raise self._error(what, done.returncode, done.stderr)
        return done.stdout.decode()

    def run_detached(self, unit: str, script: str, what: str) -> str:
        """Run the shell `script` on the host as the transient systemd unit `unit`, waiting for it: a
        controller that stops half-way does not stop it half-way (a service it stops is not left stopped
        by a lost connection). The script travels on stdin into a root-only file the unit runs (and
        removes first): on a unit's command line systemd would expand `${...}` itself."""
        return self.run(
            f'script=$(mktemp /run/{unit}.XXXXXX) && cat > "$script" || exit 1; '
            f"systemctl reset-failed {unit} 2>/dev/null; systemd-run --unit {unit} --quiet --wait --pipe "
            '--collect /bin/sh "$script"; status=$?; rm -f "$script"; exit $status',
            what,
            input=f'rm -f "$0"\n{script}\n'.encode(),
        )

    @contextmanager
    def _started(self, command: str, what: str, stdout: int = subprocess.PIPE) -> Iterator[subprocess.Popen]:
        """The command running with its standard input (and output) piped. Leaving the block waits for
        it and raises HostCommandError, with the end of its stderr, when it failed."""
        process = subprocess.Popen(
            self.argv(command), stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, bufsize=CHUNK
        )
        errors = _drain(process.stderr)
        try:
            yield process
        except BrokenPipeError:
            pass  # the command stopped reading: its exit status and stderr below say why
        except BaseException:
            process.kill()
            raise
        finally:
            code = process.wait()
            errors.join()
        if code != 0:
            raise self._error(what, code, errors.text)

    @contextmanager
    def reader(self, command: str, what: str, secret: Secret | None = None) -> Iterator[IO[bytes]]:
        """The command's standard output as a file-like object read in a stream. Leaving the block
        checks the exit status: a dump that failed half-way raises instead of passing for complete."""
        with self._started(command, what) as process:
            process.stdin.write(_first_line(secret))
            process.stdin.close()
            yield process.stdout
            process.stdout.read()  # whatever the consumer left, so that the command can finish

    @contextmanager
    def writer(self, command: str, what: str, secret: Secret | None = None) -> Iterator[IO[bytes]]:
        """The command's standard input as a file-like object to write a stream into; leaving the
        block closes it and checks the exit status."""
        with self._started(command, what, stdout=subprocess.DEVNULL) as process:
            process.stdin.write(_first_line(secret))
            yield process.stdin
            process.stdin.close()

    def feed(self, command: str, what: str, source: IO[bytes], secret: Secret | None = None) -> str:
        """Stream `source` into the command's standard input and return its (short) standard output."""
        with self._started(command, what) as process:
            feeder = Feeder(source, process.stdin, _first_line(secret))
            output = process.stdout.read()
            feeder.finish()
        return output.decode()

    def _error(self, what: str, code: int, stderr: bytes | str) -> HostCommandError:
        text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        detail = " ".join(text.strip().splitlines()[-3:]) or "no message"
        return HostCommandError(f"{self.node.name}: {what} failed (exit {code}): {detail}")


def _first_line(secret: Secret | None) -> bytes:
    return secret.reveal().encode() + b"\n" if secret is not None else b""


class Feeder(threading.Thread):
    """Copies a stream into a process's standard input (after `first`), then closes it, in a thread
    of its own so that the caller can read the process's output meanwhile. `finish` raises, in the
    caller's thread, what went wrong other than the process no longer reading."""

    def __init__(self, source: IO[bytes], stdin: IO[bytes], first: bytes = b""):
        super().__init__(daemon=True)
        self.source, self.stdin, self.first, self.failure = source, stdin, first, None
        self.start()

    def run(self) -> None:
        try:
            self.stdin.write(self.first)
            copy_stream(self.source, self.stdin)
        except BrokenPipeError:
            pass  # the process stopped reading: its exit status says why
        except BaseException as error:
            self.failure = error
        finally:
            try:
                self.stdin.close()
            except OSError:
                pass

    def finish(self) -> None:
        self.join()
        if self.failure is not None:
            raise self.failure


class _Drain(threading.Thread):
    """Collects a command's stderr while its stdout streams, so neither pipe fills up and blocks."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe, self.text = pipe, ""

    def run(self) -> None:
        self.text = self.pipe.read().decode(errors="replace")[-4000:]


def _drain(pipe) -> _Drain:
    thread = _Drain(pipe)
    thread.start()
    return thread


def copy_stream(source, target, chunk: int = CHUNK) -> int:
    """Copy one file-like object into another in pieces; the number of bytes copied."""
    total = 0
    while piece := source.read(chunk):
        target.write(piece)
        total += len(piece)
    return total
