"""Verify Redis on the local data host: a real client, real auth, persistence as the profile says."""

from __future__ import annotations

import pytest
import redis

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve
from roles.redis.facts import RedisInfo
from tests.lane import lane_host

PROFILE = load_profile("local")
SETTINGS = PROFILE.services.redis
DATA = PROFILE.group("data")[0]
HOST = lane_host(PROFILE, DATA.name)


def client(**credentials) -> redis.Redis:
    return redis.Redis(host=str(DATA.address), port=SETTINGS.port, socket_timeout=5, **credentials)


def test_ping_with_the_password():
    assert client(password=resolve(PROFILE, SETTINGS.password).reveal()).ping() is True


def test_refused_without_or_with_a_wrong_password():
    with pytest.raises(redis.exceptions.AuthenticationError):
        client().ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        client(password="not-the-password").ping()


def test_bound_to_the_private_address_with_persistence():
    connection = client(password=resolve(PROFILE, SETTINGS.password).reveal())
    assert connection.config_get("bind")["bind"] == f"{DATA.address} 127.0.0.1"
    assert connection.config_get("appendonly")["appendonly"] == ("yes" if SETTINGS.appendonly else "no")
    assert connection.config_get("maxmemory-policy")["maxmemory-policy"] == SETTINGS.maxmemory_policy


def test_password_stays_out_of_the_config_and_readback_works():
    password = resolve(PROFILE, SETTINGS.password).reveal()
    assert password not in HOST.file("/etc/redis/gpuaas.conf").content_string
    auth = HOST.file("/etc/redis/gpuaas-auth.conf")
    assert (auth.mode, auth.user, auth.group) == (0o640, "root", "redis")
    info = RedisInfo().process(HOST.check_output(RedisInfo().command(SETTINGS.port, auth.path)).splitlines())
    assert info["redis_version"].startswith("7.")
    assert password not in RedisInfo().command(SETTINGS.port, auth.path)
