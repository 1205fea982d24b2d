"""Data services on the `data` hosts, outside the cluster's lifecycle. A service the profile turns off
is reported once, with the reason, and left alone.

pyinfra inventories/ENV.py deploys/data.py
"""

from gpuaas.context import current_profile, host_in
from gpuaas.report import service_enabled
from roles import keycloak, nats, object_store, openbao, postgres, redis, temporal
from roles.keycloak.deploy import keycloak as keycloak_server
from roles.nats.deploy import nats as nats_server
from roles.object_store.deploy import object_store as seaweedfs
from roles.openbao.deploy import openbao as openbao_server
from roles.postgres.deploy import postgres as postgres_server
from roles.redis.deploy import redis as redis_server
from roles.temporal.deploy import temporal as temporal_server

profile = current_profile()
if host_in(postgres.APPLIES_TO):
    postgres_server()
if host_in(redis.APPLIES_TO):
    redis_server()
if host_in(nats.APPLIES_TO):
    nats_server()
if host_in(object_store.APPLIES_TO) and service_enabled(profile, "object_store", "SeaweedFS (object_store)"):
    seaweedfs()
if host_in(openbao.APPLIES_TO):
    openbao_server()
temporal_title = f"Temporal ({profile.services.temporal.mode} mode)"
if host_in(temporal.APPLIES_TO) and service_enabled(profile, "temporal", temporal_title):
    temporal_server()
if host_in(keycloak.APPLIES_TO) and service_enabled(profile, "keycloak", "Keycloak"):
    keycloak_server()
