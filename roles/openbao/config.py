"""The files roles/openbao writes on a host and the commands it runs, computed from the profile."""

from __future__ import annotations

import posixpath
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.templating import render_template
from roles.openbao.settings import OpenBaoSettings

TEMPLATES = Path(__file__).parent / "templates"
CONFIG = "/etc/openbao/openbao.hcl"
UNIT = "/etc/systemd/system/openbao.service"
TLS_DIR = "/etc/openbao/tls"
CA_CERT = f"{TLS_DIR}/ca.crt"
CA_KEY = f"{TLS_DIR}/ca.key"
TLS_CERT = f"{TLS_DIR}/openbao.crt"
TLS_KEY = f"{TLS_DIR}/openbao.key"
PROGRAM_LINK = "/usr/local/bin/bao"
#: Init's output waits here (root only) until the controller has stored it; a run cut short in between
#: picks it up from here on the next run instead of losing the keys.
PENDING_INIT = "/root/.openbao-init-pending.json"


def settings_for(profile: Profile) -> OpenBaoSettings:
    return profile.services.openbao


def raft_dir(settings: OpenBaoSettings) -> str:
    return posixpath.join(settings.data_dir, "raft")


def api_url(settings: OpenBaoSettings, node: Host) -> str:
    return f"https://{node.address}:{settings.port}"


def context(profile: Profile, node: Host) -> dict:
    settings = settings_for(profile)
    return {
        "settings": settings,
        "node_name": node.name,
        "address": str(node.address),
        "program": PROGRAM_LINK,
        "raft_dir": raft_dir(settings),
        "tls_cert": TLS_CERT,
        "tls_key": TLS_KEY,
        "config": CONFIG,
    }


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """The server configuration and unit (neither holds a secret)."""
    data = context(profile, node)
    return {
        CONFIG: render_template(str(TEMPLATES / "openbao.hcl.j2"), data),
        UNIT: render_template(str(TEMPLATES / "openbao.service.j2"), data),
    }


def subject_alt_names(node: Host) -> list[str]:
    """The names a client may dial: the host's name and address, and loopback."""
    return sorted({f"DNS:{node.name}", "DNS:localhost", f"IP Address:{node.address}", "IP Address:127.0.0.1"})


def trusted_ca(settings: OpenBaoSettings) -> str:
    """What a client on the host trusts: the host's own CA, or the operator's certificate itself."""
    return CA_CERT if settings.tls_cert is None else TLS_CERT


def client(settings: OpenBaoSettings, node: Host, command: str) -> str:
    """`bao COMMAND` against the host's own server, trusting the certificate the server presents."""
    ca = trusted_ca(settings)
    return f"BAO_ADDR={api_url(settings, node)} BAO_CACERT={ca} {PROGRAM_LINK} {command}"
