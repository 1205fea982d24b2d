"""roles/temporal: the dev-mode unit and the readback fact, computed without a host."""

from __future__ import annotations

import json

from gpuaas.profile import load_profile
from roles.temporal.config import UNIT, rendered_files
from roles.temporal.facts import TemporalCluster


def test_dev_unit_serves_the_ui_on_the_profile_address_and_persists_in_sqlite():
    local = load_profile("local")
    unit = rendered_files(local, local.host("local-server"))[UNIT]
    assert "server start-dev --ip 0.0.0.0 --port 7233" in unit and "--ui-ip 172.30.77.10" in unit
    assert "--db-filename /var/lib/temporal/temporal.db --namespace platform" in unit
    assert "--ui-disable-news-fetch" in unit and "ReadWritePaths=/var/lib/temporal" in unit


def test_server_mode_renders_no_dev_unit():
    staging = load_profile("staging")
    assert staging.services.temporal.mode == "server"
    assert rendered_files(staging, staging.hosts[0]) == {}


def test_cluster_fact_reads_health_and_version():
    output = (
        json.dumps({"status": "SERVING"}, indent=2).splitlines()
        + json.dumps({"serverVersion": "1.32.0", "capabilities": {}}, indent=2).splitlines()
    )
    assert TemporalCluster().process(output) == {"health": "SERVING", "server_version": "1.32.0"}
    assert TemporalCluster().process(["connection refused"]) is None
