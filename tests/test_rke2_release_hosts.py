"""The cluster deploy with RKE2's official release, when RKE2_ARTIFACTS points at a directory holding
rke2.linux-amd64.tar.gz, sha256sum-amd64.txt and rke2-images.linux-amd64.tar.zst, and RKE2_VERSION
names their version (v1.30.4+rke2r1). Skipped with that reason otherwise: the release cannot be
downloaded on every machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roles.rke2.checks import nodes_listing
from tests.local_variant import converge, inventory, on_server, pin

DIRECTORY, VERSION = os.environ.get("RKE2_ARTIFACTS", ""), os.environ.get("RKE2_VERSION", "")
pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(
        not (DIRECTORY and VERSION),
        reason="RKE2_ARTIFACTS and RKE2_VERSION are not set: point "
        "them at the official release's files and version to run RKE2 for real",
    ),
]
FILES = {
    "rke2": "rke2.linux-amd64.tar.gz",
    "rke2-checksums": "sha256sum-amd64.txt",
    "rke2-images": "rke2-images.linux-amd64.tar.zst",
}


def test_the_official_release_forms_the_cluster(local_hosts, tmp_path):
    releases = f"https://github.com/rancher/rke2/releases/download/{VERSION}"
    pins = {name: pin(name, Path(DIRECTORY) / file, VERSION, f"{releases}/{file}") for name, file in FILES.items()}
    path = inventory(tmp_path, pins, {}, {"rke2": {"kubeconfig_via_address": True}})
    env = {"KUBECONFIG": str(tmp_path / "kubeconfig")}
    converge(path, "deploys/cluster.py", env)
    listing = on_server(nodes_listing())
    assert "local-server=True" in listing and "local-gpu-1=True" in listing
    assert converge(path, "deploys/cluster.py", env)["success"] == 0
