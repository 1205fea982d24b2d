"""What roles/rke2 reads back from the current host: The installed RKE2 version and, on a server, the
API's readiness."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.rke2.config import KUBECONFIG, KUBECTL, PROGRAM, is_server
from roles.rke2.facts import ApiReady, Rke2Version


def read_back(profile: Profile, node: Host) -> dict | None:
    found: dict = {"version": host.get_fact(Rke2Version, program=PROGRAM)}
    if is_server(node):
        found["api_ready"] = host.get_fact(ApiReady, kubectl=KUBECTL, kubeconfig=KUBECONFIG)
    return found
