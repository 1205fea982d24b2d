"""How the lane's hosts are reached the way operators reach real ones: an SSH key made for the lane, an
unprivileged operator account with passwordless sudo on every host, and each host's own keys recorded
in the known_hosts file the connection checks.

The hosts' keys are read from inside each container (`docker exec`), as a cloud provider's console
shows a new machine's keys: the first SSH connection already checks them strictly."""

from __future__ import annotations

import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gpuaas.connection import identity_file, known_hosts_file, ssh_argv, ssh_config
from gpuaas.lane import LaneError, run
from gpuaas.profile import Host, Profile
from gpuaas.secrets import GENERATED_DIR

SSH_READY_SECONDS = 30
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
#: Present once a container made host keys of its own (the image's are shared by every container).
OWN_HOST_KEYS = "/etc/ssh/.gpuaas-lane-host-keys"
SUDOERS = "/etc/sudoers.d/90-gpuaas-lane"


def lane_ssh_dir(profile: Profile) -> Path:
    """Where the lane keeps its key, known_hosts and ssh_config: beside its generated secrets."""
    return GENERATED_DIR / profile.secret_scope / "ssh"


def config_file(profile: Profile) -> Path:
    return lane_ssh_dir(profile) / "config"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def ensure_key(profile: Profile) -> Path:
    """The lane's private key (ed25519, made once, 0600) named by `connection.identity_file`."""
    key = identity_file(profile)
    if key is None:
        raise LaneError(
            f"profile '{profile.name}': connection.identity_file is not set; the lane logs in with "
            f"a key of its own (for example .secrets/{profile.secret_scope}/ssh/id_ed25519)"
        )
    if not key.exists():
        _private_dir(key.parent)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"gpuaas lane {profile.secret_scope}", "-f", str(key))
    return key


def _provision_script(profile: Profile, public_key: str) -> str:
    """Run as root inside a container: the operator account, its key, sudo, host keys of its own."""
    user = profile.connection.user
    home = "/root" if user == "root" else f"/home/{user}"
    q_user, q_home = shlex.quote(user), shlex.quote(home)
    lines = ["set -e"]
    if user != "root":
        lines.append(
            f"id -u {q_user} >/dev/null 2>&1 || useradd --create-home --home-dir {q_home} --shell /bin/bash {q_user}"
        )
    lines += [
        f"install -d -m 700 -o {q_user} -g {q_user} {q_home}/.ssh",
        f"printf '%s\\n' {shlex.quote(public_key)} > {q_home}/.ssh/authorized_keys",
        f"chown {q_user}:{q_user} {q_home}/.ssh/authorized_keys && chmod 600 {q_home}/.ssh/authorized_keys",
    ]
    if user != "root" and profile.connection.sudo:
        rule = f"{user} ALL=(ALL:ALL) NOPASSWD: ALL"
        lines += [
            f"printf '%s\\n' {shlex.quote(rule)} > {SUDOERS}.new",
            f"chmod 440 {SUDOERS}.new",
            f"visudo -cqf {SUDOERS}.new && mv {SUDOERS}.new {SUDOERS}",
        ]
    lines += [
        f"if [ ! -e {OWN_HOST_KEYS} ]; then rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; "
        f"touch {OWN_HOST_KEYS}; systemctl restart ssh; fi",
        "systemctl enable --now ssh >/dev/null 2>&1",
        *(f"cat /etc/ssh/ssh_host_{kind}_key.pub" for kind in HOST_KEY_TYPES),
    ]
    return "\n".join(lines) + "\n"


def _provision_host(profile: Profile, node: Host, public_key: str) -> list[str]:
    """Provision one container; its known_hosts lines."""
    output = run("docker", "exec", "-i", node.name, "sh", "-s", input=_provision_script(profile, public_key)).stdout
    keys = [line.split()[:2] for line in output.splitlines() if line.startswith(("ssh-", "ecdsa-"))]
    if not keys:
        raise LaneError(f"{node.name}: sshd has no host keys")
    return [f"{_host_field(profile, node)} {kind} {key}" for kind, key in keys]


def _wait_for_ssh(profile: Profile, node: Host) -> None:
    """Log in once with the lane's settings (strict host key checking, sudo) before anyone else does."""
    command = [*ssh_argv(profile, node, "true")]
    command[1:1] = ["-o", "ConnectTimeout=5"]
    deadline = time.monotonic() + SSH_READY_SECONDS
    while True:
        result = run(*command, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LaneError(
                f"{node.name}: no SSH login as {profile.connection.user} within {SSH_READY_SECONDS}s: "
                f"{result.stderr.strip()[-300:]}"
            )
        time.sleep(0.5)


def provision(profile: Profile) -> None:
    """Every host gets the operator account and the lane's key; their host keys replace earlier
    entries for these addresses in the lane's known_hosts; the ssh_config is written; then each host
    is logged in to once."""
    key = ensure_key(profile)
    public_key = Path(f"{key}.pub").read_text(encoding="utf-8").strip()
    with ThreadPoolExecutor(max_workers=8) as pool:
        entries = list(pool.map(lambda node: _provision_host(profile, node, public_key), profile.hosts))
    _write_known_hosts(profile, [line for lines in entries for line in lines])
    write_private(config_file(profile), ssh_config(profile))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda node: _wait_for_ssh(profile, node), profile.hosts))


def _host_field(profile: Profile, node: Host) -> str:
    port = profile.connection.port
    return str(node.address) if port == 22 else f"[{node.address}]:{port}"


def _write_known_hosts(profile: Profile, lines: list[str]) -> None:
    path = known_hosts_file(profile)
    if path is None:
        raise LaneError(
            f"profile '{profile.name}': connection.known_hosts_file is not set; the lane records its hosts' keys there"
        )
    ours = {_host_field(profile, node) for node in profile.hosts}
    kept = [line for line in _read_lines(path) if line.split(" ", 1)[0] not in ours]
    write_private(path, "".join(f"{line}\n" for line in kept + lines))


def forget_hosts(profile: Profile) -> None:
    """Remove the profile's hosts from the lane's known_hosts (their containers are gone)."""
    path = known_hosts_file(profile)
    if path is None or not path.exists():
        return
    ours = {_host_field(profile, node) for node in profile.hosts}
    kept = [line for line in _read_lines(path) if line.split(" ", 1)[0] not in ours]
    write_private(path, "".join(f"{line}\n" for line in kept))


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by this user only."""
    _private_dir(path.parent)
    new = path.with_name(f".{path.name}.new")
    descriptor = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(new, path)
