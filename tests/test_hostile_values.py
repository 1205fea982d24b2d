"""Hostile profile values. Every string a profile carries (its own fields, every role's settings at the
profile and at the host layer, nested models, lists and maps) is set in turn to values that would run
a command or leave a directory if they reached a root shell unquoted. Each one is either refused by
validation, with a message that names the field and does not repeat the value, or inert: no file the
roles write gains a line from it, and the commands a deploy plans carry it only inside quotes, so that
running them (the probes here, a planned site deploy on the local lane) creates no canary file."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gpuaas.errors import ProfileError, field_path
from gpuaas.profile import REPO_ROOT, ROLE_SETTINGS, Profile, load_profile, parse_profile
from gpuaas.render import host_files
from tests.local_variant import on_server

ENVIRONMENTS = ("staging", "local")
CANARY = "/tmp/x"
#: Values that run `touch /tmp/x` or climb out of a directory when they reach a shell or a path
#: unquoted; None: the field's own valid value with a trailing newline.
HOSTILE: dict[str, str | None] = {
    "semicolon": f"; touch {CANARY}",
    "substitution": f"$(touch {CANARY})",
    "backticks": f"`touch {CANARY}`",
    "newline": f"x\ntouch {CANARY}",
    "traversal": "../../",
    "trailing newline": None,
}
#: What a hostile value carries that must never run (and so never be echoed in a message).
COMMAND = f"touch {CANARY}"

Path_ = tuple[str | int, ...]


def base_profile(env: str) -> dict:
    """The shipped profile as complete data: every model field written out (defaults included), each
    role's settings in full at the profile layer, and again as an override on the first host."""
    profile = load_profile(env)
    data = profile.model_dump(mode="json")
    for role, model in ROLE_SETTINGS.items():
        data["roles"][role] = model.model_validate(profile.roles.get(role, {})).model_dump(mode="json")
    data["hosts"][0]["roles"] = copy.deepcopy(data["roles"])
    return data


def string_fields(node, path: Path_ = ()) -> Iterator[tuple[Path_, str | None]]:
    """Every string (and every unset optional field) of the data, by its path: what YAML may set."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_fields(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_fields(value, (*path, index))
    elif node is None or isinstance(node, str):
        yield path, node


def with_value(data: dict, path: Path_, value: str) -> dict:
    """A copy of the profile data (JSON: copied fastest as JSON) with `value` at `path`."""
    changed = json.loads(json.dumps(data))
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def hostile_value(kind: str, current: str | None) -> str | None:
    value = HOSTILE[kind]
    if value is None:
        return None if current is None else current + "\n"
    return value


def refusal_problems(error: ProfileError, path: Path_, value: str, was_set: bool) -> list[str]:
    """What is wrong with a refusal: it names no problem at the field (or, for a field that was unset,
    at the model holding it: one of several alternatives given twice), or it repeats the value."""
    name = field_path(path)
    names = (name,) if was_set else (name, field_path(path[:-1]))
    at_field = [p for p in error.problems if p.path in names or p.path.startswith((f"{name}.", f"{name}["))]
    problems = [] if at_field else [f"refused, but no problem names {name}: {[str(p) for p in error.problems]}"]
    if COMMAND in str(error) or (value.strip() and value.strip() not in ("../../",) and value in str(error)):
        problems.append(f"the message for {name} repeats the value")
    return problems


def _strings(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def injected_lines(profile: Profile, value: str) -> list[str]:
    """The files the roles write where the hostile command stands on a line of its own: a newline in a
    value that added a line (a directive of its own) to a configuration file or a unit. A YAML or JSON
    document may hold the value as one quoted string: it is parsed, and the value must be whole in it."""
    found = []
    for node in profile.hosts:
        for remote, text in host_files(profile, node.name).items():
            if COMMAND not in text:
                continue
            if remote.endswith((".yaml", ".yml", ".json")):
                strings = [s for s in _strings(yaml.safe_load(text)) if COMMAND in s]
                whole = all(value in s for s in strings) and text.count(COMMAND) == len(strings)
                found += [] if whole else [f"{node.name}:{remote}"]
            else:
                lines = [line for line in text.splitlines() if line.strip().startswith(COMMAND)]
                found += [f"{node.name}:{remote}"] if lines else []
    return found


def outcomes(env: str, kind: str) -> tuple[list[Path_], list[str]]:
    """Every string field of `env` set to the `kind` hostile value in turn: (the paths of the fields
    that accept it, problems found)."""
    data, accepted, problems = base_profile(env), [], []
    source = f"inventories/{env}.yml"
    parse_profile(copy.deepcopy(data), source)
    for path, current in string_fields(data):
        value = hostile_value(kind, current)
        if value is None:
            continue
        try:
            profile = parse_profile(with_value(data, path, value), source)
        except ProfileError as error:
            problems += refusal_problems(error, path, value, was_set=current is not None)
            continue
        accepted.append(path)
        problems += [f"{field_path(path)} adds a line to {where}" for where in injected_lines(profile, value)]
    return accepted, problems


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_string_field_refuses_or_contains_a_hostile_value(env, kind):
    _, problems = outcomes(env, kind)
    assert problems == [], "\n".join(problems)


def test_every_model_and_layer_is_enumerated():
    """The walk reaches the profile's own fields, the artifacts, every service's settings, and each
    role's settings at the profile layer, nested, in lists and per host."""
    names = {field_path(path) for path, _ in string_fields(base_profile("staging"))}
    expected = {
        "description",
        "connection.user",
        "artifacts.openbao.version",
        "artifacts.openbao.binary",
        "services.temporal.db_file",
        "services.keycloak.clients[0].host",
        "services.keycloak.java_package",
        "services.nats.store_dir",
        "services.openbao.data_dir",
        "services.postgres.databases[0].name",
        "services.redis.maxmemory",
        "roles.common.packages[0]",
        "roles.common.time_sync.servers[0]",
        "roles.common.kernel_modules[0].kconfig",
        "roles.common.service_account.home",
        "hosts[0].roles.common.service_account.home",
        "hosts[0].roles.rke2.etcd_snapshot_schedule",
    }
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("artifacts", "openbao", "version"), "../../.."),
        (("artifacts", "openbao", "version"), ".."),
        (("artifacts", "openbao", "version"), "2.7.2/../../../etc"),
        (("artifacts", "openbao", "version"), "2.7.2\n"),
        (("artifacts", "openbao", "binary"), ".."),
        (("services", "temporal", "db_file"), "/var/lib/../../etc/temporal.db"),
        (("services", "openbao", "data_dir"), "/"),
        (("roles", "common", "service_account", "home"), "/var/lib/gpuaas/.."),
    ],
)
def test_a_path_cannot_leave_its_directory(path, value):
    """A version is a directory name of its own (/opt/gpuaas/ARTIFACT/VERSION, removed and replaced
    whole on upgrades): it cannot name its parent, another directory or `/`; nor can a path setting."""
    data = with_value(base_profile("local"), path, value)
    with pytest.raises(ProfileError) as refused:
        parse_profile(data, "inventories/local.yml")
    assert field_path(path) in {p.path for p in refused.value.problems}
    assert len(value) < 3 or value not in str(refused.value)


def test_an_artifact_url_names_a_safe_program():
    """A URL's last part becomes the program's file name on the hosts when no `binary` is given."""
    data = base_profile("local")
    pin = data["artifacts"]["nats-server"]
    pin.pop("wheel")
    pin["url"] = "https://example.com/download/$(reboot)"
    with pytest.raises(ProfileError) as refused:
        parse_profile(data, "inventories/local.yml")
    assert "artifacts.nats-server.url" in {p.path for p in refused.value.problems}
    assert "reboot" not in str(refused.value)


# --- the commands themselves: built with hostile text (as if a check were missing) and run here ---


def _runs_inert(command: str, directory: Path) -> None:
    """Run `command` in a shell in `directory`; the canary it would touch unquoted must not exist."""
    subprocess.run(["sh", "-c", command], cwd=directory, capture_output=True, check=False, timeout=30)
    assert not (directory / "canary").exists(), command


SHELL_HOSTILE = ["; touch canary", "$(touch canary)", "`touch canary`", "x\ntouch canary", "' ; touch canary ; '"]


@pytest.mark.parametrize("hostile", SHELL_HOSTILE)
def test_probe_commands_quote_every_value(tmp_path, hostile):
    """The probes every role runs before it decides to change anything (facts: they run even with
    --dry) keep a value inside quotes, whatever it holds."""
    from gpuaas.probe import (
        StateProbe,
        account_probe,
        block_probe,
        files_probe,
        owned_files_probe,
        packages_probe,
        program_probe,
        services_probe,
        sysctls_probe,
    )
    from roles.common.facts import KernelModuleState
    from roles.temporal.facts import TemporalSchema

    path = f"{tmp_path}/{hostile}"
    probes = [
        files_probe({path: ("content", "644")}),
        owned_files_probe("owned", {path: ("content", "640", hostile, hostile)}),
        program_probe(path, path, "0" * 64),
        account_probe(hostile, (path,)),
        block_probe(path, ["a line"], f"# {{mark}} {hostile}"),
        sysctls_probe({hostile: hostile}),
        packages_probe([hostile]),
        services_probe(running=[hostile], enabled=[hostile]),
    ]
    commands = [probe.command for probe in probes]
    commands.append(StateProbe().command(tuple((f"{index}{hostile}", c) for index, c in enumerate(commands))))
    commands.append(KernelModuleState().command("overlay", hostile))
    commands.append(TemporalSchema().command("temporal", path))
    for command in commands:
        _runs_inert(command, tmp_path)


@pytest.mark.parametrize("hostile", SHELL_HOSTILE)
def test_a_private_write_quotes_its_path(tmp_path, hostile):
    """The command that writes a secret file keeps a hostile path one path (it is created as named)."""
    from gpuaas.operations import private_write

    path = f"{tmp_path}/{hostile.replace(chr(10), ' ')}/value"
    command = private_write(path, "the value", user=_me(), group=_my_group())
    stdin = "\n".join(command.connector_arguments["_stdin"]) + "\n"
    subprocess.run(
        ["sh", "-c", command.get_raw_value()],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=tmp_path,
        check=False,
        timeout=30,
    )
    assert not (tmp_path / "canary").exists()
    assert Path(path).read_text() == "the value"


def _me() -> str:
    return subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()


def _my_group() -> str:
    return subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()


def quoted_only(command: str, value: str) -> bool:
    """Whether every occurrence of `value` in `command` lies inside single quotes (where the shell
    reads nothing in it), as shlex.quote leaves it."""
    inside, spans, index = [], [], 0
    single = double = False
    while index < len(command):
        char = command[index]
        if single:
            single = char != "'"
            inside.append(single)
        elif char == "\\" and not single:
            inside += [False, False]
            index += 2
            continue
        elif char == "'" and not double:
            single = True
            inside.append(False)
        else:
            double = (not double) if char == '"' else double
            inside.append(False)
        index += 1
    spans = [match.span() for match in re.finditer(re.escape(value), command)]
    return all(all(inside[start:end]) for start, end in spans)


def test_quoted_only_sees_a_missing_quote():
    """The check the lane test relies on: it passes shlex.quote's form and fails the bare value."""
    value = f"$(touch {CANARY})"
    assert quoted_only(f"ls {shlex.quote(value)}", value)
    assert quoted_only(f"ls {shlex.quote('/opt/' + value + '/bin')}", value)
    assert not quoted_only(f"ls {value}", value)
    assert not quoted_only(f'ls "{value}"', value)


# --- a planned site deploy on the local lane ---------------------------------------------------------

PLANNER = Path(__file__).parent / "hosttools" / "planned_commands.py"


@pytest.mark.hosts
def test_a_planned_site_deploy_carries_accepted_values_only_quoted(local_hosts, tmp_path):
    """Every field of the local profile that accepts a command substitution gets one of its own, all at
    once (the connection's own settings aside: they are the operator's files, never a host's). The site
    deploy is planned on the lane (--dry: facts and probes run, operations are generated, none runs):
    each value shows up in the commands only inside single quotes, and no canary exists afterwards."""
    accepted, _ = outcomes("local", "substitution")
    token = tmp_path.name[-12:].replace("-", "")
    data, values = base_profile("local"), {}
    for index, path in enumerate(p for p in accepted if p[0] != "connection"):
        values[field_path(path)] = f"$(touch /tmp/gpuaas-canary-{token}-{index})"
        data = with_value(data, path, values[field_path(path)])
    (tmp_path / "local.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "local.py").write_text(
        f"from gpuaas.inventory import load_groups\n\nglobals().update(load_groups({str(tmp_path / 'local.yml')!r}))\n"
    )
    plan = tmp_path / "plan.json"
    result = subprocess.run(
        ["python", str(PLANNER), "--dry", str(tmp_path / "local.py"), "deploys/site.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "GPUAAS_PLANNED_COMMANDS": str(plan)},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    planned = json.loads(plan.read_text())
    # On a converged lane each role's probes find it in place and it plans no operation: the probes
    # (facts, run for real even with --dry) are then what carries the profile to the hosts.
    assert any("@@gpuaas-probe" in fact for fact in planned["facts"]), (result.stdout + result.stderr)[-3000:]
    commands = planned["facts"] + [c for host_commands in planned["operations"].values() for c in host_commands]
    for name, value in values.items():
        for command in commands:
            if command.startswith("upload "):
                assert not any(line.startswith(value) for line in command.splitlines()[1:]), name
            else:
                assert quoted_only(command, value), f"{name} reaches a command unquoted: {command[:300]}"
    canaries = f"ls /tmp/gpuaas-canary-{token}-* 2>/dev/null || true"
    assert on_server(canaries) == ""
    assert (
        subprocess.run(
            ["docker", "exec", "local-gpu-1", "sh", "-c", canaries], capture_output=True, text=True, check=True
        ).stdout
        == ""
    )
    assert not list(Path("/tmp").glob(f"gpuaas-canary-{token}-*"))
