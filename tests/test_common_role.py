"""roles/common: what it renders and what it checks, computed from the profile without a host."""

from __future__ import annotations

import subprocess

from gpuaas.docs import readme_with_table
from gpuaas.managed import probes_of
from gpuaas.probe import Probe, StateProbe, mismatches, sha1
from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.templating import render_template
from roles.common.config import config_files, hosts_entries, settings_for
from roles.common.facts import ActiveSwap, KernelModuleState
from roles.common.settings import CommonSettings
from roles.common.state import baseline


def _rendered(settings: CommonSettings) -> dict[str, str]:
    return {f.path: render_template(f.template, f.context) for f in config_files(settings)}


def test_chrony_follows_the_profile():
    staging = load_profile("staging")
    files = _rendered(settings_for(staging, staging.hosts[0]))
    assert (
        "server ntp1.gpuaas.example.com iburst\nserver ntp2.gpuaas.example.com iburst\n"
        in files["/etc/chrony/chrony.conf"]
    )
    assert files["/etc/default/chrony"].strip().endswith('DAEMON_OPTS="-F 1"')
    local = load_profile("local")
    files = _rendered(settings_for(local, local.hosts[0]))
    assert "server " not in files["/etc/chrony/chrony.conf"]
    assert 'DAEMON_OPTS="-F 1 -x"' in files["/etc/default/chrony"]


def test_kernel_files_hold_modules_and_sysctls():
    files = _rendered(CommonSettings(sysctls={"net.ipv4.ip_forward": "1", "vm.max_map_count": "262144"}))
    assert files["/etc/modules-load.d/gpuaas.conf"].splitlines()[1:] == ["overlay", "br_netfilter"]
    assert files["/etc/sysctl.d/90-gpuaas.conf"].splitlines()[1:] == [
        "net.ipv4.ip_forward = 1",
        "vm.max_map_count = 262144",
    ]


def test_journald_limits():
    files = _rendered(CommonSettings(journald={"system_max_use": "4G", "max_retention": "30day"}))
    conf = files["/etc/systemd/journald.conf.d/90-gpuaas.conf"]
    assert "SystemMaxUse=4G\n" in conf and "MaxRetentionSec=30day\n" in conf


def test_hosts_entries_cover_every_node_and_the_api_name():
    prod = load_profile("prod")
    entries = hosts_entries(prod)
    assert [e["names"][0] for e in entries] == [h.name for h in prod.hosts]
    assert entries[0]["names"] == ["prod-server-1", "api.gpuaas.example.com"]
    assert all(len(e["names"]) == 1 for e in entries[1:])


def test_host_override_beats_profile_and_default(raw):
    from gpuaas.profile import parse_profile

    raw["hosts"][1]["roles"] = {"common": {"journald": {"system_max_use": "8G"}}}
    raw["roles"]["common"]["journald"] = {"system_max_use": "2G"}
    profile = parse_profile(raw, "staging.yml")
    assert settings_for(profile, profile.hosts[1]).journald.system_max_use == "8G"
    assert settings_for(profile, profile.hosts[0]).journald.system_max_use == "2G"
    assert settings_for(profile, profile.hosts[0]).journald.max_retention == "14day"


def test_probes_want_exactly_what_the_deploy_writes():
    local = load_profile("local")
    settings = settings_for(local, local.hosts[0])
    checks = {p.key: p for p in probes_of(baseline(settings, "local-server", ["172.30.77.10 local-server"]))}
    for config in config_files(settings):
        content = render_template(config.template, config.context)
        assert f"{sha1(content)} {config.path}" in checks[f"file {config.path}"].wanted
        assert f"{config.path} 644 root root" in checks[f"file {config.path}"].wanted
    assert "/proc/sys/net/ipv4/ip_forward" in checks["sysctl net.ipv4.ip_forward"].command
    assert checks["service chrony"].matches("ActiveState=active UnitFileState=enabled")
    assert checks["service systemd-journald"].matches("ActiveState=active UnitFileState=static")
    assert not checks["service chrony"].matches("ActiveState=active UnitFileState=disabled")
    assert checks["kernel module br_netfilter"].matches("builtin")
    assert not checks["kernel module br_netfilter"].matches("absent")
    assert [p.wanted for key, p in checks.items() if key.startswith("sysctl ")] == ["1", "1", "1"]
    assert checks["hostname"].wanted == "local-server"
    assert checks[f"packages {' '.join(settings.packages)}"].wanted == " ".join(["ii"] * len(settings.packages))
    assert checks["block /etc/hosts"].wanted == sha1("172.30.77.10 local-server\n") + " -"


def test_state_probe_parses_and_compares():
    fact = StateProbe()
    command = fact.command((("a", "echo 1"), ("b", "printf x; echo; echo y")))
    assert "{ echo 1 ; }" in command and command.endswith("; true")
    actual = fact.process(["", f"{StateProbe.marker}a", "1 ", "", f"{StateProbe.marker}b", "x", "  y"])
    assert actual == {"a": "1", "b": "x y"}
    checks = [Probe("a", "", "1"), Probe("b", "", "x z"), Probe("c", "", ""), Probe("b", "", r"x \w", pattern=True)]
    assert mismatches(checks, actual) == ["b", "c"]


def test_probe_output_survives_a_missing_final_newline():
    result = subprocess.run(
        ["sh", "-c", StateProbe().command((("a", "printf 'ii ii'"), ("b", "echo 2")))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert StateProbe().process(result.stdout.splitlines()) == {"a": "ii ii", "b": "2"}


def test_facts_parse_host_output():
    assert ActiveSwap().process(["Filename Type Size Used Priority", "/swapfile file 1024 0 -2"]) == ["/swapfile"]
    assert ActiveSwap().process(["Filename Type Size Used Priority"]) == []
    assert KernelModuleState().process(["builtin"]) == "builtin"
    assert "CONFIG_BRIDGE_NETFILTER=y" in KernelModuleState().command("br_netfilter", "CONFIG_BRIDGE_NETFILTER")


def test_role_readme_table_is_generated_from_the_settings():
    readme = (REPO_ROOT / "roles" / "common" / "README.md").read_text()
    assert readme == readme_with_table(readme, CommonSettings), "run `gpuaas docs` to regenerate it"
    assert '| `journald.system_max_use` | str | `"1G"` |' in readme


def test_every_role_readme_table_is_generated_from_its_settings():
    from gpuaas.docs import readme_settings

    for role, model in readme_settings().items():
        readme = (REPO_ROOT / "roles" / role / "README.md").read_text()
        assert readme == readme_with_table(readme, model), f"roles/{role}: run `gpuaas docs` to regenerate it"
