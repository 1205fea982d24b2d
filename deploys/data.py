"""Data services on the `data` hosts, outside the cluster's lifecycle. Every service's state is checked
in one round trip per host first; a service the profile turns off is reported once, with the
reason, and left alone.

pyinfra inventories/ENV.py deploys/data.py
"""

from gpuaas.context import current_node, current_profile, host_in
from gpuaas.managed import probes_of
from gpuaas.probe import prefetch
from gpuaas.report import service_enabled
from roles import keycloak, nats, object_store, openbao, postgres, redis, temporal
from roles.keycloak.deploy import keycloak as keycloak_server
from roles.nats import state as nats_state
from roles.nats.deploy import nats as nats_server
from roles.object_store import state as object_store_state
from roles.object_store.deploy import object_store as seaweedfs
from roles.openbao import state as openbao_state
from roles.openbao.deploy import openbao as openbao_server
from roles.postgres import state as postgres_state
from roles.postgres.deploy import postgres as postgres_server
from roles.redis import state as redis_state
from roles.redis.deploy import redis as redis_server
from roles.temporal import state as temporal_state
from roles.temporal.deploy import temporal as temporal_server

profile = current_profile()
# role, its switch in services (the name and what the report calls it), its deploy, its state's probes
SERVICES = (
    (postgres, None, postgres_server, postgres_state),
    (redis, None, redis_server, redis_state),
    (nats, None, nats_server, nats_state),
    (object_store, ("object_store", "SeaweedFS (object_store)"), seaweedfs, object_store_state),
    (openbao, None, openbao_server, openbao_state),
    (temporal, ("temporal", f"Temporal ({profile.services.temporal.mode} mode)"), temporal_server, temporal_state),
    (keycloak, ("keycloak", "Keycloak"), keycloak_server, None),
)

deployed = [
    (deploy, state)
    for role, switch, deploy, state in SERVICES
    if host_in(role.APPLIES_TO) and (switch is None or service_enabled(profile, *switch))
]
if deployed:
    prefetch(
        [
            probes_of(state.desired(profile, current_node()))
            if hasattr(state, "desired")
            else state.probes(profile, current_node())
            for _, state in deployed
            if state is not None
        ]
    )
for deploy, _ in deployed:
    deploy()
