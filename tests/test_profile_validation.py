"""Every shipped profile validates; broken profiles fail with the file, the field path and the reason."""

from __future__ import annotations

import copy
import subprocess
import sys
import time

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
    ("duplicate host", _duplicate_host, "hosts[2].name", "duplicate host: hosts[1] has the same name"),
    ("host in no group", _set("hosts.1.groups", []), "hosts[1].groups", "at least 1"),
    ("unknown group", _set("hosts.1.groups", ["gpu_nodes"]), "hosts[1].groups[0]", "rke2_agents"),
    ("two servers in a two-node profile", _add_server, "hosts", "exactly one rke2_servers host, found 2"),
    ("missing secret reference", _set("cluster.token", "secret:nope"), "cluster.token", "not defined under secrets"),
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
        "64 lower-case hexadecimal digits",
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
        "not inside dns.zone",
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
        "size",
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


# --- refusals in words: (case, mutation, field path, words of the rule, the refused value) -------------
# The refused value must not appear anywhere in the report: it may be a credential pasted into the wrong field.


def _append(path: str, item):
    def mutate(raw):
        node = raw
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(item)

    return mutate


def _record(name: str, target: str, type_: str = "A"):
    return _append("dns.records", {"name": f"{name}.staging.gpuaas.example.com", "type": type_, "target": target})


def _url_artifact(url: str):
    return _set("artifacts.nats-server", {"version": "2.15.1", "url": url, "sha256": "a" * 64})


def _databases(*names: str):
    return _set(
        "services.postgres",
        {
            "databases": [
                {"name": name, "password": f"secret:{secret}"}
                for name, secret in zip(names, ("pg_platform_password", "pg_temporal_password"), strict=False)
            ]
        },
    )


def _label(key: str, value: str = "gpu"):
    return _set("hosts.1.labels", {key: value})


def _steps(*mutations):
    def mutate(raw):
        for mutation in mutations:
            mutation(raw)

    return mutate


LONG_NAME = "g" * 64
HELM_CHART = {"name": "tools", "chart": "tools", "repo": "https://chartuser:helm-pass-zz@charts.example.com"}

REFUSED = [
    # patterns: a trailing newline is not part of any name
    (
        "newline after a host name",
        _set("hosts.1.name", "nlhost-zz\n"),
        "hosts[1].name",
        ("valid hostname",),
        "nlhost-zz",
    ),
    (
        "newline after the API name",
        _set("cluster.api_hostname", "apinl-zz.staging.gpuaas.example.com\n"),
        "cluster.api_hostname",
        ("fully qualified DNS name",),
        "apinl-zz",
    ),
    (
        "newline after the bucket",
        _set("backup.bucket", "bucketnl-zz\n"),
        "backup.bucket",
        ("S3 bucket name",),
        "bucketnl-zz",
    ),
    (
        "newline after a secret reference",
        _set("cluster.token", "secret:rke2_token\n"),
        "cluster.token",
        ("secret reference",),
        "secret:rke2_token",
    ),
    (
        "newline after the zone",
        _set("dns.zone", "zonenl-zz.example.com\n"),
        "dns.zone",
        ("fully qualified DNS name",),
        "zonenl-zz",
    ),
    (
        "newline after a sha256",
        _set("artifacts.openbao.sha256", "b" * 64 + "\n"),
        "artifacts.openbao.sha256",
        ("64 lower-case hexadecimal digits",),
        "b" * 64,
    ),
    (
        "newline after an env source",
        _set("secrets.rke2_token.env", "ENVNL_ZZ\n"),
        "secrets.rke2_token.env",
        ("environment variable name",),
        "ENVNL_ZZ",
    ),
    ("newline after the login", _set("connection.user", "opsnl-zz\n"), "connection.user", ("user name",), "opsnl-zz"),
    (
        "newline after a database name",
        _databases("platform", "dbnl_zz\n"),
        "services.postgres.databases[1].name",
        ("identifier",),
        "dbnl_zz",
    ),
    # credentials inside URLs
    (
        "credentials in the backup endpoint",
        _set("backup.endpoint", "https://AKIAZZ:s3-pass-zz@s3.staging.gpuaas.example.com"),
        "backup.endpoint",
        ("must not carry credentials", "secret reference"),
        "s3-pass-zz",
    ),
    (
        "user in an artifact URL",
        _url_artifact("https://token-user-zz@downloads.example.com/nats-server.tar.gz"),
        "artifacts.nats-server.url",
        ("must not carry credentials",),
        "token-user-zz",
    ),
    (
        "credentials in a registry mirror",
        _set(
            "roles.rke2", {"registries": {"mirrors": {"docker.io": ["https://u:mirror-pass-zz@registry.example.com"]}}}
        ),
        "roles.rke2.registries.mirrors.docker.io[0]",
        ("must not carry credentials",),
        "mirror-pass-zz",
    ),
    (
        "credentials in a host's chart repository",
        _set("hosts.1.roles", {"rke2": {"helm_charts": [HELM_CHART]}}),
        "hosts[1].roles.rke2.helm_charts[0].repo",
        ("must not carry credentials",),
        "helm-pass-zz",
    ),
    # plain http to hosts outside the environment
    (
        "http backup endpoint on the internet",
        _set("backup.endpoint", "http://s3-zz.example.com"),
        "backup.endpoint",
        ("plain http", "use https"),
        "s3-zz.example.com",
    ),
    (
        "http backup endpoint outside the node network",
        _set("backup.endpoint", "http://192.0.2.10:8333"),
        "backup.endpoint",
        ("plain http", "CIDRs"),
        "192.0.2.10",
    ),
    (
        "http artifact download",
        _url_artifact("http://dl-zz.example.com/nats-server.tar.gz"),
        "artifacts.nats-server.url",
        ("plain http",),
        "dl-zz.example.com",
    ),
    (
        "http registry mirror",
        _set("roles.rke2", {"registries": {"mirrors": {"docker.io": ["http://reg-zz.example.com"]}}}),
        "roles.rke2.registries.mirrors.docker.io[0]",
        ("plain http",),
        "reg-zz.example.com",
    ),
    # DNS records that cannot coexist or never converge
    ("one name and type twice", _record("portal", "stg-gpu-1"), "dns.records[4]", ("same name and type",), "stg-gpu-1"),
    (
        "a CNAME beside an A record",
        _record("portal", "lb-zz.example.com", "CNAME"),
        "dns.records[4]",
        ("CNAME cannot stand beside other records",),
        "lb-zz.example.com",
    ),
    (
        "AAAA at an IPv4 host",
        _set("dns.records.1.type", "AAAA"),
        "dns.records[1].target",
        ("AAAA record points at an IPv6 address",),
        "10.20.0.10",
    ),
    (
        "AAAA at an IPv4 address",
        _record("v4", "192.0.2.77", "AAAA"),
        "dns.records[4].target",
        ("AAAA record points at an IPv6 address",),
        "192.0.2.77",
    ),
    (
        "A at an IPv6 address",
        _record("v6", "2001:db8::77"),
        "dns.records[4].target",
        ("A record points at an IPv4 address",),
        "2001:db8::77",
    ),
    (
        "IPv6 target in upper case",
        _record("v6", "2001:DB8::77", "AAAA"),
        "dns.records[4].target",
        ("canonical form",),
        "2001:DB8::77",
    ),
    (
        "IPv6 target with zero groups spelled out",
        _record("v6", "2001:db8:0:0:0:0:0:77", "AAAA"),
        "dns.records[4].target",
        ("canonical form",),
        "2001:db8:0:0:0:0:0:77",
    ),
    (
        "IPv6 target with leading zeros",
        _record("v6", "2001:0db8::0077", "AAAA"),
        "dns.records[4].target",
        ("canonical form",),
        "2001:0db8::0077",
    ),
    (
        "IPv4-mapped IPv6 target",
        _record("v6", "::ffff:c000:24d", "AAAA"),
        "dns.records[4].target",
        ("IPv4-mapped",),
        "c000:24d",
    ),
    (
        "a CNAME at its own name",
        _record("loop", "loop.staging.gpuaas.example.com", "CNAME"),
        "dns.records[4].target",
        ("own name",),
        "loop.staging",
    ),
    # Postgres databases
    (
        "a database twice",
        _databases("platform", "platform"),
        "services.postgres.databases[1].name",
        ("services.postgres.databases[0] has the same name",),
        "platform",
    ),
    (
        "database postgres",
        _databases("platform", "postgres"),
        "services.postgres.databases[1].name",
        ("reserved by PostgreSQL",),
        "'postgres'",
    ),
    (
        "database template0",
        _databases("template0"),
        "services.postgres.databases[0].name",
        ("reserved",),
        "'template0'",
    ),
    (
        "database template1",
        _databases("template1"),
        "services.postgres.databases[0].name",
        ("reserved",),
        "'template1'",
    ),
    (
        "database with the roles' pg_ prefix",
        _databases("pg_zz"),
        "services.postgres.databases[0].name",
        ("reserved",),
        "pg_zz",
    ),
    # a server listed as an agent too
    (
        "server and agent",
        _set("hosts.1.groups", ["rke2_servers", "rke2_agents"]),
        "hosts[1].groups",
        ("RKE2 server or an RKE2 agent, not both",),
        "stg-gpu-1",
    ),
    # addresses no host can take
    ("network address", _set("hosts.1.address", "10.20.0.0"), "hosts[1].address", ("network address",), "10.20.0.0"),
    (
        "broadcast address",
        _set("hosts.1.address", "10.20.0.255"),
        "hosts[1].address",
        ("broadcast address",),
        "10.20.0.255",
    ),
    (
        "the declared gateway",
        _steps(_set("network.gateway", "10.20.0.254"), _set("hosts.1.address", "10.20.0.254")),
        "hosts[1].address",
        ("gateway",),
        "10.20.0.254",
    ),
    (
        "a lane's gateway",
        _steps(_set("lane", {}), _set("hosts.1.address", "10.20.0.1")),
        "hosts[1].address",
        ("gateway",),
        "10.20.0.1",
    ),
    (
        "a gateway outside the network",
        _set("network.gateway", "10.99.0.1"),
        "network.gateway",
        ("outside",),
        "10.99.0.1",
    ),
    (
        "a gateway at the broadcast address",
        _set("network.gateway", "10.20.0.255"),
        "network.gateway",
        ("broadcast address",),
        "10.20.0.255",
    ),
    # Kubernetes labels
    ("label name starting with '-'", _label("-pool-zz"), "hosts[1].labels", ("label key",), "-pool-zz"),
    ("label name of 64 characters", _label(LONG_NAME), "hosts[1].labels", ("at most 63",), LONG_NAME),
    (
        "label prefix in upper case",
        _label("Gpuaas-ZZ.io/pool"),
        "hosts[1].labels",
        ("DNS-subdomain prefix",),
        "Gpuaas-ZZ",
    ),
    ("label key with two slashes", _label("a/b-zz/pool"), "hosts[1].labels", ("label key",), "b-zz"),
    (
        "label value of 64 characters",
        _label("pool", LONG_NAME),
        "hosts[1].labels.pool",
        ("label value", "63"),
        LONG_NAME,
    ),
    ("label value with a space", _label("pool", "gpu zz"), "hosts[1].labels.pool", ("label value",), "gpu zz"),
    (
        "label value ending in '-'",
        _label("pool", "gpuzz-"),
        "hosts[1].labels.pool",
        ("starting and ending with a letter or digit",),
        "gpuzz-",
    ),
    (
        "label value with a trailing newline",
        _label("pool", "gpuzz\n"),
        "hosts[1].labels.pool",
        ("label value",),
        "gpuzz",
    ),
    # secret sources
    (
        "secret file that is a directory",
        _set("secrets.backup_access_key_id", {"file": "/usr/share"}),
        "secrets.backup_access_key_id.file",
        ("is a directory",),
        "/usr/share",
    ),
    # messages that could have echoed a secret, or shown a class name or a regular expression
    (
        "a secret pasted as an env source",
        _set("secrets.rke2_token.env", "sk-live-Secret-ZZ"),
        "secrets.rke2_token.env",
        ("environment variable name",),
        "sk-live-Secret-ZZ",
    ),
    (
        "a secret pasted as a secret's name",
        _set("secrets", {"Hunter2-Secret-ZZ": {"env": "A"}}),
        "secrets",
        ("a key here", "secret name"),
        "Hunter2-Secret-ZZ",
    ),
    (
        "a secret pasted as a secret's source",
        _set("secrets.rke2_token", "hunter2-secret-zz"),
        "secrets.rke2_token",
        ("should be a mapping",),
        "hunter2-secret-zz",
    ),
    ("a section given as text", _set("connection", "ssh-zz"), "connection", ("should be a mapping",), "ssh-zz"),
]


@pytest.mark.parametrize("case,mutate,path,words,refused", REFUSED, ids=[c[0] for c in REFUSED])
def test_refusal_names_the_field_and_the_rule_and_never_the_value(tmp_path, raw, case, mutate, path, words, refused):
    mutate(raw)
    source = write_profile(tmp_path, raw)
    with pytest.raises(ProfileError) as failure:
        load_profile(source)
    report = failure.value.report()
    lines = [line for line in report.splitlines() if line.startswith(f"{source}: {path}: ")]
    assert lines, f"no problem reported at {path}:\n{report}"
    assert any(all(word in line for word in words) for line in lines), report
    assert refused not in report
    # The rule in words: never a regular expression or a class name in its place.
    assert "should match pattern" not in report and "instance of" not in report


STAGING_TEXT = (REPO_ROOT / "inventories" / "staging.yml").read_text(encoding="utf-8")
ALIAS_BOMB = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)
)

# File-level refusals: (case, the file's bytes from staging's text, where, words of the rule, refused bytes)
REFUSED_FILES = [
    ("an alias bomb", lambda text: (text + ALIAS_BOMB).encode(), "line ", ("aliases expanded", "more than"), "lol"),
    (
        "an alias inside itself",
        lambda text: (text + "loop: &loop [1, *loop]\n").encode(),
        "line ",
        ("alias refers to a collection that contains it",),
        "loop",
    ),
    (
        "a merge key with a value that is not a mapping",
        lambda text: text.replace("connection:\n", "connection:\n  <<: merge-zz\n").encode(),
        "line ",
        ("merging",),
        "merge-zz",
    ),
    (
        "a byte that is not UTF-8",
        lambda text: text.replace("Reference", "Ref\xe9rence").encode("latin-1"),
        "",
        ("not UTF-8", f"offset {STAGING_TEXT.encode().index(b'Reference') + 3}"),
        "Ref",
    ),
    (
        "a stray 0xff byte",
        lambda text: text.encode() + b"# \xff\n",
        "",
        ("not UTF-8", f"offset {len(STAGING_TEXT.encode()) + 2}"),
        "\xff",
    ),
    (
        "a control character",
        lambda text: text.replace("Reference", "Ref\x01zz").encode(),
        "",
        ("control character",),
        "Ref\x01zz",
    ),
    ("a list as a key", lambda text: text + "? [key-zz]\n: 1\n", "line ", ("a key is a plain value",), "key-zz"),
]


@pytest.mark.parametrize("case,content,where,words,refused", REFUSED_FILES, ids=[c[0] for c in REFUSED_FILES])
def test_file_refusal_names_the_file_and_where_without_a_traceback(tmp_path, case, content, where, words, refused):
    data = content(STAGING_TEXT)
    (tmp_path / "staging.yml").write_bytes(data if isinstance(data, bytes) else data.encode())
    started = time.monotonic()
    with pytest.raises(ProfileError) as failure:
        load_profile(tmp_path / "staging.yml")
    assert time.monotonic() - started < 0.5
    report = failure.value.report()
    lines = [line for line in report.splitlines() if line.startswith(f"{tmp_path / 'staging.yml'}: {where}")]
    assert any(all(word in line for word in words) for line in lines), report
    assert refused not in report.replace(str(tmp_path), "")


def test_cli_validate_reports_every_refusal_on_its_own_lines_and_exits_2(tmp_path, staging_raw):
    """All the refused profiles through `gpuaas validate` at once: exit 2, one line per problem and a
    summary per file, no traceback, no refused value."""
    sources = []
    for index, (_, mutate, path, words, refused) in enumerate(REFUSED):
        raw = copy.deepcopy(staging_raw)
        mutate(raw)
        (tmp_path / str(index)).mkdir()
        sources.append((write_profile(tmp_path / str(index), raw), path, words, refused))
    result = subprocess.run(
        [sys.executable, "-m", "gpuaas", "validate", *(str(source) for source, *_ in sources)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    for source, path, words, refused in sources:
        own = [line for line in result.stderr.splitlines() if line.startswith(f"{source}: ")]
        assert own[-1].startswith(f"{source}: {len(own) - 1} problem") and own[-1].endswith("no host was contacted")
        assert any(line.startswith(f"{source}: {path}: ") and all(w in line for w in words) for line in own), own
        assert not any(refused in line for line in own)


def _merge_text(text: str) -> str:
    """staging's DNS records, the last two written with a merge key over an anchored first record."""
    return text.replace(
        "    - {name: portal.staging.gpuaas.example.com, target: stg-server-1, proxied: true}\n",
        "    - &proxied {name: portal.staging.gpuaas.example.com, target: stg-server-1, proxied: true}\n",
    ).replace(
        "    - {name: term.staging.gpuaas.example.com, target: stg-server-1, proxied: true}\n",
        "    - {<<: *proxied, name: term.staging.gpuaas.example.com}\n"
        "    - <<: *proxied\n      name: www.staging.gpuaas.example.com\n      proxied: false\n",
    )


def test_merge_keys_work_as_yaml_defines_them(tmp_path):
    text = _merge_text(STAGING_TEXT)
    assert text.count("<<: *proxied") == 2
    (tmp_path / "staging.yml").write_text(text)
    records = {r.name.split(".")[0]: r for r in load_profile(tmp_path / "staging.yml").dns.records}
    assert (records["term"].target, records["term"].proxied) == ("stg-server-1", True)
    # The mapping's own keys win over the merged ones.
    assert (records["www"].target, records["www"].proxied) == ("stg-server-1", False)


def test_a_key_given_twice_beside_a_merge_key_is_still_refused(tmp_path):
    text = _merge_text(STAGING_TEXT).replace("      proxied: false\n", "      proxied: false\n      proxied: true\n")
    (tmp_path / "staging.yml").write_text(text)
    with pytest.raises(ProfileError, match="key 'proxied' is given twice"):
        load_profile(tmp_path / "staging.yml")


ACCEPTED = [
    # legal variants next to each refusal above: the rules are not tighter than the standards
    ("https endpoint with port and path", _set("backup.endpoint", "https://s3.example.com:9443/store")),
    ("'@' in a URL's path", _url_artifact("https://downloads.example.com/v@1/nats-server.tar.gz")),
    ("http to a host by address", _set("backup.endpoint", "http://10.20.0.10:8333")),
    ("http to a host by name", _set("backup.endpoint", "http://stg-server-1:8333")),
    ("http inside the node network", _set("backup.endpoint", "http://10.20.0.50:8333")),
    ("http to loopback", _set("backup.endpoint", "http://127.0.0.1:9000")),
    ("http to localhost", _set("backup.endpoint", "http://localhost:9000")),
    ("http to a service address", _set("backup.endpoint", "http://10.43.0.50:8333")),
    (
        "http to a cluster service in chart values",
        _set(
            "roles.rke2",
            {
                "helm_charts": [
                    {
                        "name": "tools",
                        "chart": "tools",
                        "repo": "https://charts.example.com",
                        "values": {"metrics": "http://prometheus.monitoring.svc:9090"},
                    }
                ]
            },
        ),
    ),
    ("a URL as the description", _set("description", "http://wiki.example.com/gpuaas")),
    ("A and AAAA of one name", _record("portal", "2001:db8::77", "AAAA")),
    ("a canonical IPv6 target", _record("v6", "2001:db8:0:1::77", "AAAA")),
    ("a CNAME alone", _record("www", "portal.staging.gpuaas.example.com", "CNAME")),
    ("several records of other names", _steps(_record("a1", "10.20.0.10"), _record("a2", "10.20.0.21"))),
    ("databases near the reserved names", _databases("postgres_app", "template")),
    ("a database with pg inside", _databases("app_pg")),
    (
        "first and last usable address",
        _steps(_set("hosts.0.address", "10.20.0.1"), _set("hosts.1.address", "10.20.0.254")),
    ),
    ("a gateway no host takes", _set("network.gateway", "10.20.0.1")),
    ("a lane host beside its gateway", _steps(_set("lane", {}), _set("hosts.1.address", "10.20.0.2"))),
    ("a label with a DNS prefix", _label("gpu.example.com/pool-name_v1.2", "A-1_b.c")),
    ("a label name alone, in upper case", _label("GPU", "H100")),
    ("an empty label value", _label("pool", "")),
    ("a label value of 63 characters", _label("pool", "g" * 63)),
    ("a secret file that is not there yet", _set("secrets.backup_access_key_id", {"file": "/etc/gpuaas/x/key"})),
    ("a server that is also a data host", _set("hosts.0.groups", ["rke2_servers", "data"])),
]


@pytest.mark.parametrize("case,mutate", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_legal_variants_are_accepted(tmp_path, raw, case, mutate):
    mutate(raw)
    profile = load_profile(write_profile(tmp_path, raw))
    assert profile.name == "staging"


def test_non_ascii_utf8_text_and_a_byte_order_mark_are_accepted(tmp_path):
    text = STAGING_TEXT.replace("Reference two-node", "Référence à deux nœuds")
    (tmp_path / "staging.yml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_profile(tmp_path / "staging.yml").description.startswith("Référence à deux nœuds")


def test_every_shipped_profile_renders(tmp_path):
    for env in ENVIRONMENTS:
        result = subprocess.run(
            [sys.executable, "-m", "gpuaas", "render", env, "--out", str(tmp_path / env)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_cli_validate_refuses_unreadable_files_in_words_and_exits_2(tmp_path):
    sources = []
    for index, (_, content, where, words, refused) in enumerate(REFUSED_FILES):
        data = content(STAGING_TEXT)
        (tmp_path / str(index)).mkdir()
        source = tmp_path / str(index) / "staging.yml"
        source.write_bytes(data if isinstance(data, bytes) else data.encode())
        sources.append((source, where, words, refused))
    result = subprocess.run(
        [sys.executable, "-m", "gpuaas", "validate", *(str(source) for source, *_ in sources)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    for source, where, words, _ in sources:
        own = [line for line in result.stderr.splitlines() if line.startswith(f"{source}: ")]
        assert len(own) == 2 and own[-1] == f"{source}: 1 problem; no host was contacted", own
        assert own[0].startswith(f"{source}: {where}") and all(word in own[0] for word in words), own
