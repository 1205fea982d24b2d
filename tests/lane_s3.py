"""A real SeaweedFS S3 store on the controller, at a shaped lane's backup endpoint (the controller's address
on the lane network): the stand-in for the external store that staging, demo and prod back up to."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from gpuaas import artifacts
from gpuaas.backup import store
from gpuaas.profile import Profile
from gpuaas.secrets import resolve
from roles.object_store.config import s3_identities

#: Ports of the store's other servers (their gRPC ports are these + 10000), away from the lane's own.
MASTER_PORT, VOLUME_PORT, FILER_PORT = 19333, 18080, 18888


@contextmanager
def lane_s3(profile: Profile):
    """`weed server -s3` bound to the address and port of `backup.endpoint`, with the profile's backup
    identity, and the profile's bucket in it; stopped and removed on exit."""
    endpoint = urlsplit(str(profile.backup.endpoint))
    program = artifacts.binary("seaweedfs", profile.artifacts["seaweedfs"])
    identities = s3_identities(
        resolve(profile, profile.backup.access_key_id), resolve(profile, profile.backup.secret_access_key)
    )
    with tempfile.TemporaryDirectory(prefix="gpuaas-lane-s3-") as directory:
        config = Path(directory) / "s3.json"
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(identities.reveal())
        data = Path(directory) / "data"
        data.mkdir()
        log = Path(directory) / "weed.log"
        with log.open("wb") as output:  # the child keeps its own copy of the descriptor
            server = subprocess.Popen(
                [
                    str(program),
                    "server",
                    f"-dir={data}",
                    f"-ip={endpoint.hostname}",
                    f"-ip.bind={endpoint.hostname}",
                    f"-master.port={MASTER_PORT}",
                    f"-volume.port={VOLUME_PORT}",
                    "-volume.max=0",
                    "-filer",
                    f"-filer.port={FILER_PORT}",
                    "-s3",
                    f"-s3.port={endpoint.port}",
                    f"-s3.config={config}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _create_bucket(profile, server, log)
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _create_bucket(profile: Profile, server: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    """Create the bucket once the store takes it. A loaded machine can keep the filer from reaching
    the master for a minute or more; a store that exits or never takes it fails with its own log."""
    s3 = store.client(profile)
    deadline = time.monotonic() + seconds
    while True:
        try:
            s3.create_bucket(Bucket=profile.backup.bucket)
            return
        except Exception as error:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").splitlines()[-30:]
                state = f"exited with {server.returncode}" if server.poll() is not None else "still running"
                raise RuntimeError(
                    f"the lane's S3 store ({state}) did not create its bucket: {error}\n" + "\n".join(tail)
                ) from error
            time.sleep(1)
