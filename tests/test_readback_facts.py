"""The readback facts, run with pyinfra's own `fact` command against the converged local data host:
each reports the running version (compared with the pin where the pin names it) and readiness."""

from __future__ import annotations

import subprocess

import pytest

from gpuaas.profile import REPO_ROOT, load_profile
from roles.nats.config import MONITOR_ADDRESS
from roles.openbao.config import client
from roles.redis.config import AUTH as REDIS_AUTH
from tests.local_variant import fact

pytestmark = pytest.mark.hosts


@pytest.fixture(scope="module")
def converged(local_hosts):
    result = subprocess.run(
        ["pyinfra", "-y", "inventories/local.py", "deploys/data.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    profile = load_profile("local")
    return profile, profile.host("local-server")


def test_each_service_reports_its_version_and_readiness(converged):
    profile, node = converged
    services, pins, address = profile.services, profile.artifacts, str(node.address)

    postgres = fact("roles.postgres.facts.PostgresVersion", port=services.postgres.port)
    assert postgres.startswith(f"PostgreSQL {services.postgres.version}.")
    redis = fact("roles.redis.facts.RedisInfo", port=services.redis.port, auth_file=REDIS_AUTH)
    assert redis["redis_version"].startswith("7.")
    nats = fact("roles.nats.facts.NatsVarz", address=MONITOR_ADDRESS, monitor_port=services.nats.monitor_port)
    assert nats == {"version": pins["nats-server"].version, "jetstream": True, "healthy": True}
    temporal = fact(
        "roles.temporal.facts.TemporalCluster", program="temporal", address=f"{address}:{services.temporal.port}"
    )
    assert temporal["health"] == "SERVING" and temporal["server_version"]
    bao = fact("roles.openbao.facts.BaoStatus", client_command=client(services.openbao, node, "status"))
    assert bao["version"] == pins["openbao"].version and bao["initialized"] and not bao["sealed"]
