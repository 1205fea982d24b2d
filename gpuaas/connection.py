"""How the controller reaches a profile's hosts: pyinfra's connector data, and the same settings for
the OpenSSH client (streamed backup commands, the lane's ssh_config), so that both check host keys
against the same known_hosts and log in with the same key."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path
from typing import Any

from gpuaas.profile import Host, Profile, local_path


def identity_file(profile: Profile) -> Path | None:
    value = profile.connection.identity_file
    return local_path(value) if value else None


def known_hosts_file(profile: Profile) -> Path | None:
    value = profile.connection.known_hosts_file
    return local_path(value) if value else None


def pyinfra_name(profile: Profile, node: Host) -> str:
    """pyinfra's name for a host: `@docker/NAME` for `connection.kind: docker`; otherwise NAME, reached
    over SSH at its profile address."""
    return f"@docker/{node.name}" if profile.connection.kind == "docker" else node.name


def pyinfra_data(profile: Profile, node: Host) -> dict[str, Any]:
    """pyinfra host data for the profile's connection (SSH settings; `_sudo` for every operation)."""
    connection = profile.connection
    if connection.kind != "ssh":
        return {}
    data: dict[str, Any] = {
        "ssh_user": connection.user,
        "ssh_port": connection.port,
        "ssh_hostname": str(node.address),
        "ssh_strict_host_key_checking": connection.host_key_checking,
        "_sudo": connection.sudo,
    }
    key, known_hosts = identity_file(profile), known_hosts_file(profile)
    if key is not None:
        # Only this key: an agent's or ~/.ssh's keys are not offered to the hosts.
        data.update(ssh_key=str(key), ssh_allow_agent=False, ssh_look_for_keys=False)
    if known_hosts is not None:
        data["ssh_known_hosts_file"] = str(known_hosts)
    return data


def ssh_options(profile: Profile) -> list[str]:
    """OpenSSH client options equal to pyinfra's connection settings: no prompt, the same host key
    policy, the same key and known_hosts."""
    connection = profile.connection
    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        f"StrictHostKeyChecking={connection.host_key_checking}",
        "-p",
        str(connection.port),
    ]
    key, known_hosts = identity_file(profile), known_hosts_file(profile)
    if key is not None:
        options += ["-o", "IdentitiesOnly=yes", "-i", str(key)]
    if known_hosts is not None:
        options += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return options


def shared_connection_options(socket_dir: Path) -> list[str]:
    """OpenSSH options that carry every command to a host over one connection, opened by the first and
    kept while it is used (a command then costs a round trip, not a login). The socket lives in
    `socket_dir`, which only the operator can enter; a connection that stops answering is given up
    within seconds (a restarted host)."""
    return [
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={socket_dir}/%C",
        "-o",
        "ControlPersist=10",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=2",
    ]


def ssh_argv(profile: Profile, node: Host, command: str, socket_dir: Path | None = None) -> list[str]:
    """`ssh` running `sh -c COMMAND` on the host, through `sudo -n` when the connection uses sudo; over
    a shared connection when given its socket directory."""
    connection = profile.connection
    remote = f"sh -c {shlex.quote(command)}"
    if connection.sudo:
        remote = f"sudo -n {remote}"
    shared = shared_connection_options(socket_dir) if socket_dir is not None else []
    return ["ssh", *ssh_options(profile), *shared, f"{connection.user}@{node.address}", remote]


def ssh_config(profile: Profile) -> str:
    """An ssh_config with one entry per host (`ssh -F FILE NAME` logs in as pyinfra does)."""
    connection = profile.connection
    lines = [f"# The hosts of {profile.name}: ssh -F THIS-FILE HOST", ""]
    key, known_hosts = identity_file(profile), known_hosts_file(profile)
    for node in profile.hosts:
        lines += [
            f"Host {node.name}",
            f"  HostName {node.address}",
            f"  Port {connection.port}",
            f"  User {connection.user}",
            "  BatchMode yes",
            f"  StrictHostKeyChecking {connection.host_key_checking}",
        ]
        if key is not None:
            lines += [f"  IdentityFile {key}", "  IdentitiesOnly yes"]
        if known_hosts is not None:
            lines.append(f"  UserKnownHostsFile {known_hosts}")
        lines.append("")
    return "\n".join(lines)


def without_nagle() -> None:
    """Make every paramiko connection of this process send at once (TCP_NODELAY). paramiko sets no
    socket options, so each small SSH packet waits behind the peer's delayed ACK: about 40 ms per
    command, which is most of what a run that changes nothing costs. Idempotent."""
    import paramiko

    if getattr(paramiko.Transport, "_gpuaas_nodelay", False):
        return
    original = paramiko.Transport.__init__

    def __init__(self, sock, *args, **kwargs):
        original(self, sock, *args, **kwargs)
        if isinstance(self.sock, socket.socket) and self.sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    paramiko.Transport.__init__ = __init__
    paramiko.Transport._gpuaas_nodelay = True
