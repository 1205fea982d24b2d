"""The host groups a profile puts hosts in, and the controller's own group, named once."""

from __future__ import annotations

RKE2_SERVERS = "rke2_servers"
RKE2_AGENTS = "rke2_agents"
DATA = "data"
#: pyinfra's `@local`: the operator's machine, for what talks to an API instead of a host.
CONTROLLER = "controller"

#: The groups a profile's hosts may be in (the controller is never a profile host).
HOST_GROUPS: tuple[str, ...] = (RKE2_SERVERS, RKE2_AGENTS, DATA)
#: The hosts that are RKE2 nodes.
CLUSTER: tuple[str, ...] = (RKE2_SERVERS, RKE2_AGENTS)
