"""The collection's roles in one place: where each applies, its settings model and the files it renders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from gpuaas.profile import Host, Profile
from roles import common, keycloak, nats, object_store, openbao, postgres, redis, rke2, temporal
from roles.common import config as common_config
from roles.common.settings import CommonSettings
from roles.keycloak import config as keycloak_config
from roles.keycloak.settings import KeycloakSettings
from roles.nats import config as nats_config
from roles.nats.settings import NatsSettings
from roles.object_store import config as object_store_config
from roles.object_store.settings import ObjectStoreSettings
from roles.openbao import config as openbao_config
from roles.openbao.settings import OpenBaoSettings
from roles.postgres import config as postgres_config
from roles.postgres.settings import PostgresSettings
from roles.redis import config as redis_config
from roles.redis.settings import RedisSettings
from roles.rke2 import config as rke2_config
from roles.rke2.settings import Rke2Settings
from roles.temporal import config as temporal_config
from roles.temporal.settings import TemporalSettings


@dataclass(frozen=True)
class Role:
    name: str
    applies_to: tuple[str, ...]
    #: The model of the role's variables (its README's table is generated from it).
    settings: type[BaseModel]
    #: Remote path -> content of every non-secret file the role writes on a host.
    rendered_files: Callable[[Profile, Host], dict[str, str]]


ROLES = (
    Role("common", common.APPLIES_TO, CommonSettings, common_config.rendered_files),
    Role("rke2", rke2.APPLIES_TO, Rke2Settings, rke2_config.rendered_files),
    Role("postgres", postgres.APPLIES_TO, PostgresSettings, postgres_config.rendered_files),
    Role("redis", redis.APPLIES_TO, RedisSettings, redis_config.rendered_files),
    Role("nats", nats.APPLIES_TO, NatsSettings, nats_config.rendered_files),
    Role("object_store", object_store.APPLIES_TO, ObjectStoreSettings, object_store_config.rendered_files),
    Role("openbao", openbao.APPLIES_TO, OpenBaoSettings, openbao_config.rendered_files),
    Role("temporal", temporal.APPLIES_TO, TemporalSettings, temporal_config.rendered_files),
    Role("keycloak", keycloak.APPLIES_TO, KeycloakSettings, keycloak_config.rendered_files),
)
