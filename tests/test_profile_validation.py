"""Every shipped profile validates; broken profiles fail with the file, the field path and the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpuaas.errors import ProfileError
from gpuaas.profile import REPO_ROOT, Connection, load_profile, parse_profile
from tests.conftest import write_profile

ENVIRONMENTS = ("local", "dev", "demo", "staging", "prod")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_shipped_profile_is_valid(env):
    profile = load_profile(env)
    assert profile.name == env
    assert profile.group("data"), "every environment has a data host"


def test_staging_is_the_two_node_reference_shape():
    profile = load_profile("staging")
    assert [h.name for h in profile.group("rke2_servers")] == ["stg-server-1"]
    assert [h.name for h in profile.group("rke2_agents")] == ["stg-gpu-1"]
    assert profile.group("data") == profile.group("rke2_servers")


def test_prod_puts_every_gpu_node_in_a_ring():
    profile = load_profile("prod")
    agents = profile.group("rke2_agents")
    assert len(agents) > 1 and all(h.ring in range(5) for h in agents)
    assert {h.ring for h in agents} == {0, 1, 2, 3, 4}


def _set(path: str, value):
    """A mutation that sets a dotted path (list indexes as numbers) in the raw profile."""

    def mutate(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _drop(path: str):
    def mutate(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _add_server(raw):
    raw["hosts"].append({"name": "stg-server-2", "address": "10.20.0.11", "groups": ["rke2_servers"]})


def _duplicate_host(raw):
    raw["hosts"].append(dict(raw["hosts"][1], address="10.20.0.99"))


PLAINTEXT = "hunter2-plaintext-token-value"

BAD_INPUT = [
    # (case, mutation, field path, words the reason contains)
    ("unknown key", _set("hosts.1.rnig", 2), "hosts[1].rnig", "unknown key"),
    ("unknown top-level key", _set("extras", {}), "extras", "unknown key"),
    ("wrong type", _set("hosts.1.ring", "zero"), "hosts[1].ring", "valid integer"),
    ("duplicate host", _duplicate_host, "hosts[2].name", "duplicate host 'stg-gpu-1'"),
    ("host in no group", _set("hosts.1.groups", []), "hosts[1].groups", "at least 1"),
    ("unknown group", _set("hosts.1.groups", ["gpu_nodes"]), "hosts[1].groups[0]", "rke2_agents"),
    ("two servers in a two-node profile", _add_server, "hosts", "exactly one rke2_servers host, found 2"),
    ("missing secret reference", _set("cluster.token", "secret:nope"), "cluster.token", "secret 'nope'"),
    ("secret field missing", _drop("cluster.agent_token"), "cluster.agent_token", "required field is missing"),
    ("plaintext secret", _set("dns.api_token", PLAINTEXT), "dns.api_token", "secret reference"),
    ("invalid CIDR", _set("network.node_cidr", "10.20.0.0/33"), "network.node_cidr", "IPv4 or IPv6 network"),
    ("invalid hostname", _set("hosts.0.name", "Stg_Server"), "hosts[0].name", "not a valid hostname"),
    ("ring out of range", _set("hosts.1.ring", 5), "hosts[1].ring", "less than or equal to 4"),
    (
        "artifact pin without sha256",
        _drop("artifacts.nats-server.sha256"),
        "artifacts.nats-server.sha256",
        "required field is missing",
    ),
    (
        "artifact sha256 malformed",
        _set("artifacts.openbao.sha256", "abc123"),
        "artifacts.openbao.sha256",
        "should match pattern",
    ),
    (
        "address outside node network",
        _set("hosts.1.address", "10.99.0.5"),
        "hosts[1].address",
        "outside network.node_cidr",
    ),
    ("invalid IP address", _set("hosts.1.address", "10.20.0.300"), "hosts[1].address", "IPv4 or IPv6 address"),
    ("ring on a server", _set("hosts.0.ring", 1), "hosts[0].ring", "only GPU agents"),
    ("overlapping CIDRs", _set("network.service_cidr", "10.42.128.0/17"), "network.service_cidr", "overlaps"),
    (
        "DNS name outside the zone",
        _set("dns.records.0.name", "portal.other.example.org"),
        "dns.records[0].name",
        "not inside zone",
    ),
    (
        "DNS target unknown",
        _set("dns.records.0.target", "no-such-host"),
        "dns.records[0].target",
        "neither a host of this profile",
    ),
    (
        "port collision",
        _set("services", {"redis": {"port": 5432}}),
        "services.redis.port",
        "port 5432 is already used by services.postgres.port",
    ),
    ("invalid bucket", _set("backup.bucket", "Bad_Bucket"), "backup.bucket", "S3 bucket name"),
    (
        "secret file inside the repo",
        _set("secrets.backup_access_key_id", {"file": str(REPO_ROOT / "key.txt")}),
        "secrets.backup_access_key_id.file",
        "outside the repository",
    ),
    (
        "secret with two sources",
        _set("secrets.rke2_token", {"env": "A_B", "file": "/etc/x"}),
        "secrets.rke2_token",
        "exactly one of",
    ),
    ("unknown role", _set("roles.kubelet", {}), "roles.kubelet", "unknown role"),
    (
        "bad role setting",
        _set("roles.common.journald", {"system_max_use": "lots"}),
        "roles.common.journald.system_max_use",
        "should match pattern",
    ),
    (
        "bad host role setting",
        _set("hosts.1.roles", {"common": {"swap_off": "perhaps"}}),
        "hosts[1].roles.common.swap_off",
        "valid boolean",
    ),
    ("name does not match the file", _set("name", "prod"), "name", "does not match the file name"),
    (
        "private key beside the code",
        _set("connection.identity_file", "inventories/id_ed25519"),
        "connection.identity_file",
        "belongs under .secrets/",
    ),
    ("host key checking off", _set("connection.host_key_checking", "no"), "connection.host_key_checking", "'yes'"),
    (
        "ringed rollout with an agent without ring",
        lambda r: (r.update(rollout={"rings": True}), r["hosts"][1].pop("ring")),
        "hosts[1].ring",
        "every rke2_agents host needs a ring",
    ),
]


@pytest.mark.parametrize("case,mutate,path,reason", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_file_field_and_reason(tmp_path, raw, case, mutate, path, reason):
    mutate(raw)
    source = write_profile(tmp_path, raw)
    with pytest.raises(ProfileError) as failure:
        load_profile(source)
    report = failure.value.report()
    lines = [line for line in report.splitlines() if line.startswith(f"{source}: {path}: ")]
    assert lines, f"no problem reported at {path}:\n{report}"
    assert any(reason in line for line in lines), report
    assert PLAINTEXT not in report


def test_every_problem_is_reported_at_once(raw):
    raw["hosts"][1]["ring"] = 9
    raw["backup"]["bucket"] = "Bad_Bucket"
    with pytest.raises(ProfileError) as failure:
        parse_profile(raw, "inventories/staging.yml")
    paths = {p.path for p in failure.value.problems}
    assert {"hosts[1].ring", "backup.bucket"} <= paths


def test_key_given_twice_in_yaml_is_refused(tmp_path):
    text = (
        (REPO_ROOT / "inventories" / "staging.yml")
        .read_text()
        .replace("topology: two-node", "topology: two-node\ntopology: multi-node")
    )
    (tmp_path / "staging.yml").write_text(text)
    with pytest.raises(ProfileError, match=r"line \d+: invalid YAML: key 'topology' is given twice"):
        load_profile(tmp_path / "staging.yml")


def test_cli_validate_accepts_every_shipped_profile():
    result = subprocess.run(
        [sys.executable, "-m", "gpuaas", "validate"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [f"inventories/{e}.yml" for e in ENVIRONMENTS]


def test_cli_validate_exits_2_and_names_the_problem(tmp_path, raw):
    raw["hosts"][1]["ring"] = 7
    source = write_profile(tmp_path, raw)
    result = subprocess.run(
        [sys.executable, "-m", "gpuaas", "validate", str(source)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"{source}: hosts[1].ring: Input should be less than or equal to 4" in result.stderr


def test_pyinfra_refuses_a_broken_profile_before_contacting_hosts(tmp_path, raw):
    raw["hosts"][1]["address"] = "10.20.0.300"
    source = write_profile(tmp_path, raw)
    inventory = tmp_path / "staging.py"
    inventory.write_text(f"from gpuaas.inventory import load_groups\nglobals().update(load_groups({str(source)!r}))\n")
    result = subprocess.run(
        ["pyinfra", "-y", str(inventory), "deploys/site.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{source}: hosts[1].address" in output
    assert "no host was contacted" in output
    assert "Connecting" not in output and "Connected" not in output


def test_inventory_groups_follow_the_profile():
    from gpuaas.inventory import groups_for
    from gpuaas.profile import resolve_profile_path

    staging = load_profile("staging")
    groups = groups_for(staging, resolve_profile_path("staging"))
    assert [name for name, _ in groups["rke2_servers"]] == ["stg-server-1"]
    assert [name for name, _ in groups["data"]] == ["stg-server-1"]
    _, data = groups["rke2_agents"][0]
    assert (data["ssh_hostname"], data["ssh_user"], data["_sudo"]) == ("10.20.0.21", "ops", True)
    assert groups["controller"][0][0] == "@local"
    assert data["ssh_strict_host_key_checking"] == "yes" and "ssh_key" not in data
    local = groups_for(load_profile("local"), resolve_profile_path("local"))
    name, data = local["rke2_agents"][0]
    assert name == "local-gpu-1" and (data["ssh_user"], data["_sudo"]) == ("ops", True)
    assert data["ssh_key"].endswith(".secrets/local/ssh/id_ed25519") and data["ssh_allow_agent"] is False
    assert data["ssh_known_hosts_file"].endswith(".secrets/local/ssh/known_hosts")
    docker = load_profile("local").model_copy(update={"connection": Connection(kind="docker")})
    assert groups_for(docker, resolve_profile_path("local"))["rke2_agents"][0][0] == "@docker/local-gpu-1"
