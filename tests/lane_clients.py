"""The local lane's data services reached from the controller through their own clients, as the product
would reach them: PostgreSQL as the platform's login role, Redis, JetStream, OpenBao's API with the root
token, Temporal's CLI on the data host."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request

import nats
import psycopg
import redis

from gpuaas.profile import Profile
from gpuaas.secrets import resolve
from tests.local_variant import on_server

SERVER = "172.30.77.10"


def secret(profile: Profile, name: str) -> str:
    return resolve(profile, f"secret:{name}").reveal()


def bao(profile: Profile, method: str, path: str, body: dict | None = None) -> dict:
    """One call of OpenBao's API on the data host with its root token; {} for a 404."""
    token = json.loads(secret(profile, "openbao_init"))["local-server"]["root_token"]
    context = ssl.create_default_context(cadata=on_server("cat /etc/openbao/tls/ca.crt"))
    request = urllib.request.Request(
        f"https://{SERVER}:8200/v1/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Vault-Token": token},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return {}
        raise
    return json.loads(text) if text else {}


class LaneClients:
    """Clients of the local data host's services, with the profile's credentials."""

    def __init__(self, profile: Profile):
        self.profile = profile

    def pg(self):
        password = secret(self.profile, "pg_platform_password")
        return psycopg.connect(host=SERVER, dbname="platform", user="platform", password=password, autocommit=True)

    def redis(self):
        return redis.Redis(host=SERVER, port=6379, password=secret(self.profile, "redis_password"))

    def nats(self, work):
        """`work(jetstream)` run on a fresh connection, closed afterwards; what it returns."""

        async def run():
            client = await nats.connect(
                f"nats://{SERVER}:4222", user="platform", password=secret(self.profile, "nats_password")
            )
            try:
                return await work(client.jetstream())
            finally:
                await client.close()

        return asyncio.run(run())

    def bao(self, method: str, path: str, body: dict | None = None) -> dict:
        return bao(self.profile, method, path, body)

    def temporal(self, command: str) -> str:
        return on_server(f"temporal {command} --address {SERVER}:7233 --namespace platform -o json")
