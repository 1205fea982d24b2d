"""What roles/nats reads back from the current host: nats-server's version, JetStream and health, from
its monitoring port."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.nats.config import MONITOR_ADDRESS
from roles.nats.facts import NatsVarz


def read_back(profile: Profile, node: Host) -> dict | None:
    varz = host.get_fact(NatsVarz, address=MONITOR_ADDRESS, monitor_port=profile.services.nats.monitor_port)
    if not varz:
        return {"version": None, "status": "failed", "message": "the monitoring port does not answer"}
    healthy = varz.get("healthy") and varz.get("jetstream")
    message = f"nats-server {varz.get('version')}, JetStream {'on' if varz.get('jetstream') else 'off'}"
    return {**varz, "status": "ok" if healthy else "failed", "message": message + ("" if healthy else ", not healthy")}
