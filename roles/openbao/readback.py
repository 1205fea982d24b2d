"""What roles/openbao reads back from the current host: OpenBao's version and seal state, from its API."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.openbao.config import client
from roles.openbao.facts import BaoStatus


def read_back(profile: Profile, node: Host) -> dict | None:
    return host.get_fact(BaoStatus, client_command=client(profile.services.openbao, node, "status"))
