"""The test host image: a Debian root file system with systemd and sshd, built once with debootstrap
from this machine's own Debian mirror and cached by a hash of its recipe."""

from __future__ import annotations

import glob
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gpuaas.lane import LaneError, run
from gpuaas.lane.machine import apt_install, is_root
from gpuaas.profile import REPO_ROOT

SUITE = "bookworm"
IMAGE_REPOSITORY = "gpuaas-testhost"
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "ca-certificates",
    "curl",
    "gnupg",
    "kmod",
    "procps",
)
CACHE_DIR = REPO_ROOT / ".cache"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources first, then sources.list)."""
    candidates = sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list"]
    for path in candidates:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
        for match in re.finditer(r"^URIs:\s*(\S+)|^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s", text, re.M):
            uri = match.group(1) or match.group(2)
            if "security" not in uri:
                return uri
    raise LaneError("no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")


def image_tag() -> str:
    """The test host image is named by a hash of its recipe: a changed recipe builds a new image."""
    recipe = f"{SUITE}|minbase|{','.join(IMAGE_PACKAGES)}"
    return f"{IMAGE_REPOSITORY}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_image(log=print) -> str:
    tag = image_tag()
    if run("docker", "image", "inspect", tag, check=False).returncode == 0:
        return tag
    if shutil.which("debootstrap") is None:
        if not is_root():
            raise LaneError("building the test host image needs debootstrap: sudo apt-get install -y debootstrap")
        apt_install("debootstrap")
    mirror = debian_mirror()
    log(f"Building test host image {tag} with debootstrap from {mirror} (once; it is cached)")
    CACHE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as rootfs:
        run("debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}", SUITE, rootfs, mirror)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-c", 'CMD ["/lib/systemd/systemd"]', "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise LaneError(f"docker import failed: {imported.stderr.strip()}")
    return tag
