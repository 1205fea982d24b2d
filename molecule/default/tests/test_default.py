"""Verify the converged local hosts with testinfra, over SSH as the operator account with sudo."""

from __future__ import annotations

import pytest

from gpuaas.profile import load_profile
from roles.common.config import settings_for
from tests.lane import lane_host

PROFILE = load_profile("local")
NODES = {node.name: node for node in PROFILE.hosts}


@pytest.fixture(params=sorted(NODES), scope="module")
def node(request):
    return NODES[request.param], lane_host(PROFILE, request.param)


def test_base_packages_installed(node):
    spec, host = node
    for package in settings_for(PROFILE, spec).packages:
        assert host.package(package).is_installed, package


def test_chrony_runs_without_touching_the_clock(node):
    _, host = node
    chrony = host.service("chrony")
    assert chrony.is_running and chrony.is_enabled
    assert "-x" in host.check_output("ps -o args= -C chronyd")
    assert "server " not in host.file("/etc/chrony/chrony.conf").content_string


def test_hostname_and_cluster_hosts(node):
    spec, host = node
    assert host.check_output("uname -n") == spec.name
    hosts = host.file("/etc/hosts").content_string
    assert "172.30.77.10 local-server api.local.gpuaas.test" in hosts
    assert "172.30.77.11 local-gpu-1" in hosts
    assert host.check_output("getent hosts api.local.gpuaas.test").split()[0] == "172.30.77.10"


def test_kernel_modules_and_sysctls(node):
    _, host = node
    assert host.file("/etc/modules-load.d/gpuaas.conf").content_string.splitlines()[1:] == ["overlay", "br_netfilter"]
    sysctl_conf = host.file("/etc/sysctl.d/90-gpuaas.conf").content_string
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        assert f"{key} = 1" in sysctl_conf
        assert host.sysctl(key) == 1, key


def test_swap_is_off(node):
    _, host = node
    assert host.check_output("tail -n +2 /proc/swaps | wc -l") == "0"


def test_journald_limits_are_live(node):
    _, host = node
    conf = host.file("/etc/systemd/journald.conf.d/90-gpuaas.conf")
    assert conf.mode == 0o644 and "SystemMaxUse=256M" in conf.content_string
    assert host.service("systemd-journald").is_running


def test_service_account(node):
    _, host = node
    account = host.user("gpuaas")
    assert account.exists and account.shell == "/usr/sbin/nologin" and account.home == "/var/lib/gpuaas"
    home = host.file("/var/lib/gpuaas")
    assert home.is_directory and home.mode == 0o750 and home.user == "gpuaas"
