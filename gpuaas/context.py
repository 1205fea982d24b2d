"""What a deploy running on a host knows about its environment: the profile and the host's entry in it."""

from __future__ import annotations

from functools import lru_cache

from pyinfra import host

from gpuaas.groups import HOST_GROUPS
from gpuaas.profile import Host, Profile, load_profile


@lru_cache(maxsize=None)
def profile(path: str) -> Profile:
    return load_profile(path)


def current_profile() -> Profile:
    return profile(host.data.gpuaas_profile)


def current_node() -> Host:
    return current_profile().host(host.data.gpuaas_node)


def host_in(groups: tuple[str, ...]) -> bool:
    """True when the current host is in any of `groups`."""
    return any(group in host.groups for group in groups)


def current_profile_host() -> Host | None:
    """The current host's entry in the profile; None on the controller (pyinfra's @local)."""
    return current_node() if host_in(HOST_GROUPS) else None
