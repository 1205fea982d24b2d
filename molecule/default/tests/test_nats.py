"""Verify NATS JetStream on the local data host: real clients, real auth."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve
from roles.nats.config import monitor_url
from tests.lane import lane_host

PROFILE = load_profile("local")
SETTINGS = PROFILE.services.nats
DATA = PROFILE.group("data")[0]
URL = f"nats://{DATA.address}:{SETTINGS.port}"
HOST = lane_host(PROFILE, DATA.name)


def test_service_runs_as_its_own_account():
    service = HOST.service("nats")
    assert service.is_running and service.is_enabled
    assert HOST.check_output("ps -o user= -C nats-server") == "nats"
    assert HOST.file(SETTINGS.store_dir).mode == 0o700


def test_running_version_is_the_pin_and_healthy():
    varz = json.loads(HOST.check_output(f"curl -fsS {monitor_url(SETTINGS, '/varz')}"))
    assert varz["version"] == PROFILE.artifacts[SETTINGS.artifact].version
    assert varz["jetstream"]["config"]["store_dir"].startswith(SETTINGS.store_dir)
    health = HOST.check_output(f"curl -fsS {monitor_url(SETTINGS, '/healthz')}")
    assert json.loads(health)["status"] == "ok"


def test_credentials_stay_out_of_the_main_config():
    password = resolve(PROFILE, SETTINGS.password).reveal()
    assert password not in HOST.file("/etc/nats/nats.conf").content_string
    auth = HOST.file("/etc/nats/auth.conf")
    assert (auth.mode, auth.user, auth.group) == (0o640, "root", "nats")
    assert password in auth.content_string


async def _publish_and_consume(password: str) -> list[bytes]:
    client = await nats.connect(URL, user=SETTINGS.user, password=password, connect_timeout=5)
    try:
        stream = client.jetstream()
        await stream.add_stream(name="VERIFY", subjects=["verify.>"])
        for index in range(3):
            await stream.publish("verify.items", f"item-{index}".encode())
        consumer = await stream.pull_subscribe("verify.items", durable="verifier")
        messages = await consumer.fetch(3, timeout=5)
        for message in messages:
            await message.ack()
        await stream.delete_stream("VERIFY")
        return [message.data for message in messages]
    finally:
        await client.close()


def test_jetstream_publish_and_consume_with_auth():
    password = resolve(PROFILE, SETTINGS.password).reveal()
    assert asyncio.run(_publish_and_consume(password)) == [b"item-0", b"item-1", b"item-2"]


def test_connection_without_credentials_is_refused():
    async def connect(**credentials):
        client = await nats.connect(URL, connect_timeout=3, allow_reconnect=False, **credentials)
        await client.close()

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(connect())
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(connect(user=SETTINGS.user, password="not-the-password"))
