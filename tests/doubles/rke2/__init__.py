"""Build the RKE2 double's release, laid out like the official one: rke2.linux-amd64.tar.gz (bin/rke2,
the scripts, the systemd units, share/rke2), sha256sum-amd64.txt and an images archive; and a double of
RKE2's install.sh."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

HERE = Path(__file__).parent
UNIT = """[Unit]
Description=Rancher Kubernetes Engine v2 ({kind}) - test double
Wants=network-online.target
After=network-online.target
Conflicts={other}.service

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/usr/local/lib/systemd/system/%N.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/rke2 {kind}
"""
UNINSTALL = """#!/bin/sh
# RKE2 double: what rke2-uninstall.sh removes.
systemctl stop rke2-server rke2-agent 2>/dev/null
systemctl disable rke2-server rke2-agent 2>/dev/null
rm -f /usr/local/bin/rke2 /usr/local/bin/rke2-killall.sh /usr/local/lib/systemd/system/rke2-*.service \\
  /usr/local/lib/systemd/system/rke2-server.env
rm -rf /usr/local/share/rke2 /etc/rancher/rke2 /etc/rancher/node /var/lib/rancher/rke2
systemctl daemon-reload
rm -f /usr/local/bin/rke2-uninstall.sh
"""


def _tarball(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    """The same bytes for the same members, so a release built again keeps its pin."""
    with (
        path.open("wb") as file,
        gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as archive,
    ):
        for name, (body, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), mode, 1767225600
            archive.addfile(info, io.BytesIO(body))
    return path


def build_release(directory: Path, version: str) -> dict[str, Path]:
    """The three release files of `version` in directory/VERSION/ (tarball, checksum file, images) and
    the install script double."""
    target = directory / version
    target.mkdir(parents=True, exist_ok=True)
    program = (HERE / "rke2_double.py").read_text().replace("@VERSION@", version).encode()
    members = {
        "bin/rke2": (program, 0o755),
        "bin/rke2-killall.sh": (b"#!/bin/sh\nsystemctl stop rke2-server rke2-agent 2>/dev/null; true\n", 0o755),
        "bin/rke2-uninstall.sh": (UNINSTALL.encode(), 0o755),
        "lib/systemd/system/rke2-server.service": (UNIT.format(kind="server", other="rke2-agent").encode(), 0o644),
        "lib/systemd/system/rke2-agent.service": (UNIT.format(kind="agent", other="rke2-server").encode(), 0o644),
        "lib/systemd/system/rke2-server.env": (b"HOME=/root\n", 0o644),
        "share/rke2/rke2-cis-sysctl.conf": (
            b"vm.panic_on_oom=0\nvm.overcommit_memory=1\nkernel.panic=10\nkernel.panic_on_oops=1\n",
            0o644,
        ),
        "share/rke2/kubectl-double": ((HERE / "kubectl_double.py").read_bytes(), 0o755),
        "share/rke2/LICENSE.txt": (b"test double of RKE2, not RKE2\n", 0o644),
    }
    tarball = _tarball(target / "rke2.linux-amd64.tar.gz", members)
    images = target / "rke2-images.linux-amd64.tar.zst"
    images.write_bytes(f"images of the RKE2 double {version}\n".encode())
    checksums = target / "sha256sum-amd64.txt"
    checksums.write_text(
        "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in (tarball, images))
    )
    script = target / "install.sh"
    script.write_bytes((HERE / "install.sh").read_bytes())
    return {"artifact": tarball, "checksums_artifact": checksums, "images_artifact": images, "script_artifact": script}


RELEASES = "https://github.com/rancher/rke2/releases/download"
ARTIFACTS = {
    "artifact": "rke2",
    "checksums_artifact": "rke2-checksums",
    "images_artifact": "rke2-images",
    "script_artifact": "rke2-install-script",
}
#: Where RKE2's install.sh of a release is published (its tag), so that its pin names one file.
SCRIPTS = "https://raw.githubusercontent.com/rancher/rke2"
#: The cluster settings the local lane's tests use: the API name does not resolve from the controller.
SETTINGS = {
    "kubeconfig_via_address": True,
    "gpu_taint": True,
    "node_labels": ["gpuaas.io/tier=test"],
    "helm_charts": [
        {
            "name": "podinfo",
            "chart": "podinfo",
            "repo": "https://stefanprodan.github.io/podinfo",
            "version": "6.7.1",
            "target_namespace": "apps",
        }
    ],
}


def release_inventory(directory: Path, version: str, settings: dict | None = None) -> Path:
    """The local profile with the double's release `version` pinned (and `settings` over the lane's
    RKE2 settings), and its pyinfra inventory."""
    from tests.local_variant import inventory, pin

    files = build_release(directory, version)
    urls = {setting: f"{RELEASES}/{version}/{path.name}" for setting, path in files.items()}
    urls["script_artifact"] = f"{SCRIPTS}/{version}/install.sh"
    pins = {
        ARTIFACTS[setting]: pin(ARTIFACTS[setting], path, version, urls[setting]) for setting, path in files.items()
    }
    return inventory(directory, pins, {}, {"rke2": SETTINGS | (settings or {})})
