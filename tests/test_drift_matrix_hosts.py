"""The drift matrix: every item a role keeps on the local lane's hosts, broken in every way a kind of drift
applies to it, is noticed by its own probe in the one-round-trip check and brought back by one converge.

Two lanes on the same hosts: the site (deploys/site.py: the baseline and the data services), then the
RKE2 cluster (deploys/cluster.py with the RKE2 double's release, tests/doubles/rke2). A round breaks
every item one of its kinds applies to (two kinds to a round where no item meets both; one SSH command
per host), runs the probes of the broken items' roles at
once (gpuaas.probe.StateProbe, as the deploys do), converges, checks that every item of every role is in
place again, and converges once more to find nothing left to change.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpuaas.lane.access import config_file
from gpuaas.probe import Probe, StateProbe
from gpuaas.profile import load_profile
from roles.gpu_stack.config import DEVICE_PLUGIN_MANIFEST, DRIVER_DEPLOY_LABEL
from roles.gpu_stack.config import HEADER as GPU_STACK_HEADER
from roles.rke2.checks import kubectl
from roles.rke2.config import HEADER as RKE2_HEADER
from roles.rke2.config import REGISTRIES
from tests.doubles.rke2 import release_inventory
from tests.hosttools.runs import pyinfra

pytestmark = pytest.mark.hosts

Item = dict
#: A break: the shell command (run as root on the item's host) that breaks the item, or None.
Break = Callable[[Item], str | None]

# --- how each kind breaks each class of item ---------------------------------------------------------


def _path(item: Item) -> str:
    return shlex.quote(item["attributes"]["path"])


def _unit(item: Item) -> str:
    return shlex.quote(item["attributes"]["unit"])


def _program_target(item: Item) -> str:
    return f'"$(readlink -f {shlex.quote(item["attributes"]["link"])})"'


def _grown_program(item: Item) -> str:
    # A running program cannot be written in place (ETXTBSY): its copy grows by a byte and replaces it.
    target = _program_target(item)
    return f't={target}; cp -p "$t" "$t.drift" && printf x >> "$t.drift" && mv -f "$t.drift" "$t"'


def _without_line(item: Item) -> str:
    # Rewritten in place: the file keeps its inode, mode and owner.
    line, path = shlex.quote(item["attributes"]["line"]), _path(item)
    return f"grep -vxF {line} {path} > /run/drift-line; cat /run/drift-line > {path}; rm -f /run/drift-line"


def _private_dirs(item: Item) -> str | None:
    dirs = item["attributes"].get("private_dirs")
    return " ".join(shlex.quote(d) for d in dirs) if dirs else None


FILES = ("Template", "Content", "SecretFile", "Upload", "JoinToken", "NouveauBlacklisted")
SERVICES = ("Service", "NodeService")
#: The release the RKE2 lane installs (the RKE2 double's).
RKE2_VERSION = "v0.0.1+double1"

#: Packages the probes and the deploy itself use (curl and the CA bundle read the services' APIs, kmod
#: loads modules, chrony keeps the clock TLS checks rely on): a Packages item is broken by removing the
#: first of its other packages.
KEPT_PACKAGES = ("ca-certificates", "curl", "chrony", "kmod", "iptables")


def _package_removed(item: Item) -> str | None:
    removable = [name for name in item["attributes"]["names"] if name not in KEPT_PACKAGES]
    # Removed, not purged: its configuration and data stay, as after an operator's mistaken removal.
    return f"apt-get remove -qq -y --no-auto-remove {shlex.quote(removable[0])} >/dev/null" if removable else None


#: kind -> item class -> break.
BY_CLASS: dict[str, dict[str, Break]] = {
    "deleted": {
        **dict.fromkeys(FILES, lambda item: f"rm -f {_path(item)}"),
        "Link": lambda item: f"rm -f {_path(item)}",
        "Line": _without_line,
        "PinnedProgram": lambda item: f"rm -f {shlex.quote(item['attributes']['link'])}",
    },
    "mode": {
        **dict.fromkeys(FILES, lambda item: f"chmod 0606 {_path(item)}"),
        "Directory": lambda item: f"chmod 0777 {_path(item)}",
        # An account's private directories opened to all: its probe reads their modes.
        "Account": lambda item: _private_dirs(item) and f"chmod 0777 {_private_dirs(item)}",
    },
    "owner": {
        **dict.fromkeys((*FILES, "Directory"), lambda item: f"chown nobody:nogroup {_path(item)}"),
        "Account": lambda item: _private_dirs(item) and f"chown nobody:nogroup {_private_dirs(item)}",
    },
    "content": {
        **dict.fromkeys(FILES, lambda item: f"echo '# drift' >> {_path(item)}"),
        "PinnedProgram": _grown_program,
    },
    "stopped": dict.fromkeys(SERVICES, lambda item: f"systemctl stop {_unit(item)}"),
    "removed": {"Packages": _package_removed},
    "disabled": dict.fromkeys(SERVICES, lambda item: f"systemctl disable --quiet {_unit(item)}"),
}

#: Role-specific items and checks, by item name prefix: kind -> break.
BY_NAME: dict[str, dict[str, Break]] = {
    "service chrony": {
        "stopped": lambda item: "systemctl stop chrony",
        "disabled": lambda item: "systemctl disable --quiet chrony",
    },
    "block /etc/hosts": {
        # /etc/hosts is bind-mounted into the container: rewritten in place, without the server's name.
        "deleted": lambda item: (
            "grep -v local-server /etc/hosts > /run/drift-hosts; cat /run/drift-hosts > "
            "/etc/hosts; rm -f /run/drift-hosts"
        ),
    },
    # The kernel's name only: /etc/hostname is left as it is, as after `hostname NAME` by hand.
    "hostname": {"content": lambda item: "hostname drift-host 2>/dev/null"},
    "sysctl net.ipv4.ip_forward": {"content": lambda item: "sysctl -qw net.ipv4.ip_forward=0"},
    # The converge comments the line out: the previous round's commented line goes first.
    "swap off": {
        "content": lambda item: (
            "sed -i '\\|/drift-swapfile|d' /etc/fstab; echo '/drift-swapfile none swap sw 0 0' >> /etc/fstab"
        )
    },
    "account gpuaas": {
        "mode": lambda item: "chmod 0777 ~gpuaas",
        "owner": lambda item: "chown nobody:nogroup ~gpuaas",
    },
    "forward ": {"stopped": lambda item: f"systemctl stop {shlex.quote(item['name'].split()[1] + '.socket')}"},
    "certificate /etc/openbao/tls/": {"deleted": lambda item: f"rm -f {shlex.quote(item['name'].split()[1])}"},
    # Temporal runs in dev mode in the local profile: its visibility database is not in use there.
    "databases ": {
        "deleted": lambda item: (
            "runuser -u postgres -- psql -Xq -c 'DROP DATABASE temporal_visibility'"
            if "temporal_visibility" in item["name"].split()
            else None
        )
    },
    "openbao unsealed": {"sealed": lambda item: "systemctl restart openbao"},
    # Another version in the program's place (moved in: the running one keeps its file).
    "installed ": {
        "content": lambda item: (
            "printf '#!/bin/sh\\necho rke2 version v0.0.0+drift\\n' > /run/drift-rke2 && chmod 755 /run/drift-rke2 "
            f"&& mv -f /run/drift-rke2 {shlex.quote(item['name'].split()[1])}"
        )
    },
    # The driver's packages: one removed (its configuration kept), or let go of their hold.
    "held packages ": {
        "removed": lambda item: (
            "apt-get remove -qq -y --no-auto-remove --allow-change-held-packages nvidia-smi >/dev/null"
        ),
        "unheld": lambda item: "apt-mark unhold nvidia-smi nvidia-kernel-dkms >/dev/null",
    },
    # Not broken (NOT_COVERED says why): no kind applies.
    "packages pci.ids": {},
    "service nvidia-persistenced": {"disabled": lambda item: "systemctl disable --quiet nvidia-persistenced"},
    # The other provider's manifest, written by the role before a provider change.
    "no withdrawn gpu_stack manifest": {
        "content": lambda item: (
            f"printf '%s\\nkind: HelmChart\\n' {shlex.quote(GPU_STACK_HEADER.strip())} > "
            f"{shlex.quote(DEVICE_PLUGIN_MANIFEST)}"
        )
    },
    # A GPU node's driver owner label turned around by hand.
    f"node label {DRIVER_DEPLOY_LABEL}": {
        "content": lambda item: kubectl(f"label node local-gpu-1 {DRIVER_DEPLOY_LABEL}=true --overwrite >/dev/null")
    },
    # A file the role wrote once and is no longer asked for (its header first): the registries file.
    "no withdrawn rke2 file": {
        "content": lambda item: (
            f"printf '%s\\nmirrors: {{}}\\n' {shlex.quote(RKE2_HEADER.strip())} > {shlex.quote(REGISTRIES)}"
        )
    },
}

KINDS = sorted({*BY_CLASS, *(kind for kinds in BY_NAME.values() for kind in kinds)})
#: Kinds broken together, one converge repairing both: no item is broken by two kinds of a round (the test
#: of the matrix checks it), and neither kind's break undoes or stops the other's (a unit file deleted
#: cannot then be disabled; OpenBao restarted to seal it would start a stopped OpenBao again).
ROUNDS = (("deleted", "unheld"), ("mode", "stopped"), ("owner", "removed"), ("content", "disabled"), ("sealed",))

#: Items no kind breaks, by name prefix, and why.
NOT_COVERED: dict[str, str] = {
    "dpkg settled": "a half-done dpkg installation cannot be made without interrupting a real one "
    "(tests/test_interrupted_hosts.py covers it)",
    "kernel module ": "the lane's containers share the machine's kernel: unloading a module would change the machine",
    "sysctl net.bridge.": "the bridge parameters belong to br_netfilter on the machine's kernel: changing them "
    "would change every container's bridged traffic",
    "service systemd-journald": "journald is started again by its sockets as soon as anything logs: a stopped "
    "journald is not a state that lasts until the probe",
    "bucket ": "deleting the backup bucket would destroy the backup sets kept in it",
    "kernel headers of the running kernel": "the archive has no headers for the machine's kernel, which the "
    "lane's containers share: the probe accepts that they are unavailable, so there is nothing to take away",
    "packages pci.ids": "on the lane's GPU host the held driver packages depend on it (through libpci3): apt "
    "refuses to remove it, so it cannot drift that way there",
    "nvidia kernel module built": "without the kernel's headers DKMS builds no module on the lane: there is "
    "none to take away",
}

#: Kinds the matrix does not apply to whole classes, and why (reported, not asserted).
NOT_COVERED_KINDS: dict[str, str] = {
    "Account deleted": "userdel gives the account's uid back; useradd does not promise the same one, and the "
    "service's files outside its private directories would stay owned by the old number",
}

# --- the lane ------------------------------------------------------------------------------------------


def failures(output: str) -> str:
    """The lines of a pyinfra run's output that say what failed, with the two before each."""
    lines = output.splitlines()
    hits = [i for i, line in enumerate(lines) if "rror" in line or "ailed" in line or "Traceback" in line]
    return "\n".join(lines[j] for i in hits[:20] for j in range(max(i - 2, 0), i + 1))


@dataclass(frozen=True)
class Lane:
    """An inventory of the local hosts, the deploy that converges it, and the roles whose items it breaks."""

    name: str
    inventory: str
    deploy: str
    roles: frozenset[str] | None = None
    env: tuple[tuple[str, str], ...] = ()


def converge(lane: Lane) -> dict:
    result = pyinfra("--json", lane.inventory, lane.deploy, env=dict(lane.env))
    assert result.returncode == 0, f"{failures(result.stderr)}\n...\n{result.stderr[-1500:]}"
    return json.loads(result.stdout)["results"]["totals"]


def as_root(profile, host: str, script: str) -> subprocess.CompletedProcess:
    """Run `script` with sh as root on `host` over the lane's SSH (the script travels on standard input)."""
    return subprocess.run(
        ["ssh", "-F", str(config_file(profile)), host, "sudo sh"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def dump_items(lane: Lane, directory: Path) -> dict[str, list[Item]]:
    """Every deployed role's items (of the lane's roles), by host, as tests/deploys/desired_items.py writes them."""
    directory.mkdir(mode=0o700, exist_ok=True)
    result = pyinfra(
        lane.inventory,
        "tests/deploys/desired_items.py",
        env={"GPUAAS_DESIRED_ITEMS_DIR": str(directory)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dumped = {}
    for path in sorted(directory.glob("*.json")):
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} is readable by others"
        dumped[path.stem] = [
            item for item in json.loads(path.read_text()) if lane.roles is None or item["role"] in lane.roles
        ]
    return dumped


def probes_of(item: Item) -> list[Probe]:
    return [Probe(p["key"], p["command"], p["wanted"], p["pattern"]) for p in item["probes"]]


def mismatched(profile, host: str, items: list[Item]) -> dict[str, list[str]]:
    """Run every probe of `items` on `host` in one command; item name -> keys of its probes that differ."""
    numbered = [(f"{index}:{probe.key}", probe) for index, item in enumerate(items) for probe in probes_of(item)]
    fact = StateProbe()
    result = as_root(profile, host, fact.command(probes=tuple((key, probe.command) for key, probe in numbered)))
    assert result.returncode == 0, f"{host}: the probes failed: {result.stderr[-2000:]}"
    actual = fact.process(result.stdout.splitlines())
    differing: dict[str, list[str]] = {}
    for key, probe in numbered:
        if not probe.matches(actual.get(key)):
            differing.setdefault(items[int(key.split(":")[0])]["name"], []).append(probe.key)
    return differing


def break_of(kind: str, item: Item) -> Break | None:
    for prefix, kinds in BY_NAME.items():
        if item["name"].startswith(prefix):
            return kinds.get(kind)
    return BY_CLASS.get(kind, {}).get(item["class"])


def breaks(kind: str, item: Item) -> str | None:
    found = break_of(kind, item)
    return found(item) if found else None


def kinds_of(item: Item) -> list[str]:
    return [kind for kind in KINDS if breaks(kind, item)]


def not_covered_reason(item: Item) -> str | None:
    return next((why for prefix, why in NOT_COVERED.items() if item["name"].startswith(prefix)), None)


# --- the tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=("site", "cluster"))
def lane(request, local_hosts, tmp_path_factory):
    """The site on the local lane; then the RKE2 cluster on the same hosts with the RKE2 double's release
    (tests/doubles/rke2), uninstalled afterwards as tests/test_rke2_hosts.py leaves them."""
    if request.param == "site":
        yield Lane("site", "inventories/local.py", "deploys/site.py")
        return
    directory = tmp_path_factory.mktemp("rke2")
    inventory = release_inventory(directory, RKE2_VERSION)
    kubeconfig = ("KUBECONFIG", str(directory / "kubeconfig"))
    yield Lane("cluster", str(inventory), "deploys/cluster.py", frozenset({"rke2", "gpu_stack"}), (kubeconfig,))
    for host in ("local-server", "local-gpu-1"):
        as_root(local_hosts, host, "test -x /usr/local/bin/rke2-uninstall.sh && /usr/local/bin/rke2-uninstall.sh; true")


@pytest.fixture(scope="module")
def items(lane, tmp_path_factory) -> dict[str, list[Item]]:
    """The lane's hosts converged once, then every item of the lane's roles on each."""
    totals = converge(lane)
    assert totals["error"] == 0, totals
    return dump_items(lane, tmp_path_factory.mktemp("desired-items"))


def test_the_matrix_covers_every_item(items):
    uncovered = [
        f"{host}: {item['role']}: {item['name']} ({item['class']})"
        for host, host_items in items.items()
        for item in host_items
        if not kinds_of(item) and not not_covered_reason(item)
    ]
    assert not uncovered, "items no kind breaks and NOT_COVERED does not name:\n" + "\n".join(uncovered)
    both = [
        f"{item['name']}"
        for host_items in items.values()
        for item in host_items
        if kinds_of(item) and not_covered_reason(item)
    ]
    assert not both, f"items both broken and listed as not covered: {both}"
    assert all(why.strip() for why in [*NOT_COVERED.values(), *NOT_COVERED_KINDS.values()])
    assert sorted(kind for round_kinds in ROUNDS for kind in round_kinds) == KINDS
    doubled = [
        f"{item['name']}: {', '.join(kinds)}"
        for host_items in items.values()
        for item in host_items
        for round_kinds in ROUNDS
        if len(kinds := [kind for kind in round_kinds if breaks(kind, item)]) > 1
    ]
    assert not doubled, f"items two kinds of one round would break: {doubled}"


def test_the_dump_holds_no_secret_value(items):
    from gpuaas.secrets import GENERATED_DIR

    text = json.dumps(items)
    scope = load_profile("local").secret_scope
    for stored in (GENERATED_DIR / scope).glob("*"):
        if stored.is_file():
            for value in [stored.read_text().strip()]:
                if len(value) >= 12:
                    assert value not in text, f"the value of secret {stored.name} is in the dump"


@pytest.mark.parametrize("kinds", ROUNDS, ids="+".join)
def test_each_broken_item_is_noticed_and_brought_back(kinds, lane, items, local_hosts):
    profile, kind = local_hosts, "+".join(kinds)
    broken: dict[str, list[Item]] = {}
    for host, host_items in items.items():
        commands = []
        for item in host_items:
            command = next((found for one in kinds if (found := breaks(one, item))), None)
            if command:
                commands.append(command)
                broken.setdefault(host, []).append(item)
        if commands:
            result = as_root(profile, host, "\n".join(commands))
            assert result.returncode == 0, f"{kind}: breaking on {host} failed: {result.stderr[-2000:]}"
    if not broken:
        # Only these kinds have nothing to break among the cluster's items: no package, no hold, no vault.
        assert lane.name == "cluster" and set(kinds) <= {"removed", "sealed", "unheld"}, f"{kind}: no item to break"
        pytest.skip(f"{kind}: no item of {sorted(lane.roles or [])} breaks this way on the {lane.name} lane")
    print(f"{kind}: broke " + "; ".join(f"{h}: {', '.join(i['name'] for i in b)}" for h, b in broken.items()))

    for host, host_broken in broken.items():
        roles = {item["role"] for item in host_broken}
        differing = mismatched(profile, host, [item for item in items[host] if item["role"] in roles])
        unnoticed = [item["name"] for item in host_broken if item["name"] not in differing]
        assert not unnoticed, f"{kind}: on {host}, the probes of {unnoticed} still match once broken"

    totals = converge(lane)
    assert totals["error"] == 0, f"{kind}: the converge after the break failed: {totals}"
    for host, host_items in items.items():
        differing = mismatched(profile, host, host_items)
        assert not differing, f"{kind}: on {host}, not brought back by the converge: {differing}"
    again = converge(lane)
    assert again["success"] == 0 and again["error"] == 0, f"{kind}: the second converge changed things: {again}"
