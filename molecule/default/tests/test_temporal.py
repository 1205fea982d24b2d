"""Verify Temporal (dev mode) on the local data host with the pinned CLI: health, namespaces, persistence."""

from __future__ import annotations

import json
import time

from gpuaas.profile import load_profile
from roles.temporal.config import PROGRAM_LINK
from roles.temporal.facts import TemporalCluster
from tests.lane import lane_host

PROFILE = load_profile("local")
SETTINGS = PROFILE.services.temporal
DATA = PROFILE.group("data")[0]
HOST = lane_host(PROFILE, DATA.name)
ADDRESS = f"{DATA.address}:{SETTINGS.port}"


def temporal(arguments: str) -> str:
    return HOST.check_output(f"{PROGRAM_LINK} {arguments} --address {ADDRESS}")


def test_cluster_serves_the_pinned_version():
    cluster = TemporalCluster().process(
        HOST.check_output(TemporalCluster().command(PROGRAM_LINK, ADDRESS)).splitlines()
    )
    assert cluster["health"] == "SERVING"
    assert cluster["server_version"]
    assert HOST.check_output(f"{PROGRAM_LINK} --version").startswith(
        f"temporal version {PROFILE.artifacts[SETTINGS.artifact].version}"
    )


def test_profile_namespaces_exist():
    for namespace in SETTINGS.namespaces:
        described = json.loads(temporal(f"operator namespace describe --namespace {namespace} -o json"))
        assert described["namespaceInfo"]["name"] == namespace


def test_a_workflow_survives_a_restart():
    namespace = SETTINGS.namespaces[0]
    workflow = f"verify-{int(time.time())}"
    temporal(f"workflow start --namespace {namespace} --type Verify --task-queue verify --workflow-id {workflow}")
    HOST.check_output("systemctl restart temporal")
    for _ in range(120):
        if HOST.run(f"{PROGRAM_LINK} operator cluster health --address {ADDRESS}").stdout.find("SERVING") >= 0:
            break
        time.sleep(0.5)
    described = json.loads(temporal(f"workflow describe --namespace {namespace} --workflow-id {workflow} -o json"))
    assert described["workflowExecutionInfo"]["execution"]["workflowId"] == workflow
    temporal(f"workflow terminate --namespace {namespace} --workflow-id {workflow} --reason verified")
    assert HOST.file(SETTINGS.db_file).user == "temporal"
