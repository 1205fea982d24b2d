"""What each host listens on, as the profile declares it, and the profile's port check built on it."""

from __future__ import annotations

import pytest
import yaml

from gpuaas.errors import ProfileError
from gpuaas.listeners import ANY, LOOPBACK, Listener, host_listeners, unexpected
from gpuaas.profile import REPO_ROOT, load_profile, parse_profile


def _refusal(raw: dict, source: str = "inventories/staging.yml") -> str:
    with pytest.raises(ProfileError) as refused:
        parse_profile(raw, source)
    return str(refused.value)


def test_a_disabled_service_port_is_not_counted(raw):
    # staging leaves the object store off: its volume port is free for Keycloak.
    raw["services"]["keycloak"] = {"enabled": True, "http_port": 8080}
    raw["artifacts"]["keycloak"] = {
        "version": "26.0.7",
        "url": "https://example.com/keycloak-26.0.7.zip",
        "sha256": "0" * 64,
    }
    profile = parse_profile(raw, "inventories/staging.yml")
    ports = {listener.port: listener.field for listener in host_listeners(profile, profile.host("stg-server-1"))}
    assert ports[8080] == "services.keycloak.http_port"


def test_the_ports_of_temporal_s_other_mode_are_not_counted(raw):
    raw["services"]["temporal"] = {"mode": "dev", "history_port": 5432}
    raw["artifacts"] = {name: pin for name, pin in raw["artifacts"].items() if not name.startswith("temporal-")}
    parse_profile(raw, "inventories/staging.yml")
    raw["services"]["temporal"]["mode"] = "server"
    assert "services.temporal.history_port: port 5432 is already used by services.postgres.port" in _refusal(raw)


def test_a_service_on_ssh_s_port_is_refused_naming_both_fields_and_the_rule(raw):
    raw["services"]["redis"] = {"port": 22}
    report = _refusal(raw)
    assert (
        "inventories/staging.yml: services.redis.port: port 22 is already used by connection.port on "
        "stg-server-1 (tcp): each port a host listens on belongs to one service"
    ) in report


def test_ssh_s_port_follows_the_connection_settings(raw):
    raw["connection"]["port"] = 2222
    raw["services"]["redis"] = {"port": 22}
    profile = parse_profile(raw, "inventories/staging.yml")
    sshd = [listener for listener in host_listeners(profile, profile.host("stg-gpu-1")) if listener.role == "sshd"]
    assert [(listener.port, listener.address, listener.field) for listener in sshd] == [(2222, ANY, "connection.port")]
    raw["services"]["redis"] = {"port": 2222}
    assert "services.redis.port: port 2222 is already used by connection.port" in _refusal(raw)


def test_a_service_on_the_supervisor_port_of_an_rke2_server_is_refused(raw):
    raw["services"]["nats"] = {"port": 9345}
    report = _refusal(raw)
    assert (
        "services.nats.port: port 9345 is already used by RKE2 supervisor (node registration) on stg-server-1 (tcp)"
    ) in report


def test_an_rke2_port_is_free_on_a_data_host_outside_the_rke2_groups():
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "prod.yml").read_text())
    raw["services"]["nats"] = {"port": 9345}
    profile = parse_profile(raw, "inventories/prod.yml")
    assert any(listener.port == 9345 for listener in host_listeners(profile, profile.host("prod-data-1")))


def test_ssh_on_an_rke2_port_is_reported_at_the_connection_port(raw):
    raw["connection"]["port"] = 10250
    report = _refusal(raw)
    assert "connection.port: port 10250 is already used by RKE2 kubelet on stg-server-1, stg-gpu-1 (tcp)" in report


def test_the_object_store_s_internal_ports_are_on_loopback_and_only_s3_is_on_the_network():
    local = load_profile("local")
    store = [
        listener for listener in host_listeners(local, local.host("local-server")) if listener.role == "object_store"
    ]
    on_network = [listener for listener in store if listener.on_network]
    assert [(listener.address, listener.port, listener.credentials) for listener in on_network] == [
        ("172.30.77.10", 8333, True)
    ]
    assert {listener.port for listener in store} == {8333, 18333, 9333, 19333, 8080, 18080, 8888, 18888}


def test_every_network_listener_of_the_shipped_profiles_is_declared_with_its_owner():
    for env in ("local", "dev", "demo", "staging", "prod"):
        profile = load_profile(env)
        for host in profile.hosts:
            for listener in host_listeners(profile, host):
                assert listener.role and listener.field, listener


@pytest.mark.parametrize(
    ("declared", "socket", "admitted"),
    [
        (ANY, "*", True),
        (ANY, "[::]", True),
        ("172.30.77.10", "172.30.77.10", True),
        ("172.30.77.10", "0.0.0.0", False),
        ("172.30.77.10", "*", False),
        ("172.30.77.10", "172.30.77.11", False),
        (LOOPBACK, "127.0.0.1", True),
        (LOOPBACK, "[::1]", True),
        (LOOPBACK, "127.0.0.53%lo", True),
        (LOOPBACK, "172.30.77.10", False),
        (LOOPBACK, "0.0.0.0", False),
    ],
)
def test_a_socket_is_admitted_only_on_the_declared_address_or_a_narrower_one(declared, socket, admitted):
    listener = Listener("tcp", declared, 8333, "object_store", "services.object_store.s3_port", True)
    assert listener.admits("tcp", socket, 8333) is admitted
    assert listener.admits("udp", socket, 8333) is False and listener.admits("tcp", socket, 8334) is False
    assert unexpected([listener], "tcp", socket, 8333) is not admitted
