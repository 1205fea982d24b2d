"""Deploy of roles/common: packages, time sync, names, kernel settings, swap, journald, service account."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.probe import drift, state_verified
from gpuaas.profile import Host
from roles.common.config import HOSTS_MARKER, ConfigFile, config_files, hosts_block_lines, settings_for
from roles.common.operations import dpkg_settled, file_block, kernel_module, swap_disabled
from roles.common.settings import CommonSettings
from roles.common.state import probes


def _template(config: ConfigFile):
    return files.template(
        name=f"Ensure {config.path} is rendered",
        src=config.template,
        dest=config.path,
        mode=config.mode,
        jinja_env_kwargs=jinja_env_kwargs(),
        **config.context,
    )


def _sysctl_value(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


@deploy("Common host baseline")
def common() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile, node)
    hosts_block = hosts_block_lines(profile)
    checks = probes(settings, node.name, hosts_block)
    if not drift(checks):
        state_verified(name="Ensure the common baseline is in place", checks=len(checks))
        return
    _converge(node, settings, hosts_block)


def _converge(node: Host, settings: CommonSettings, hosts_block: list[str]) -> None:
    apt_lock, chrony_conf, chrony_default, modules_conf, sysctl_conf, journald_conf = config_files(settings)

    _template(apt_lock)
    dpkg_settled(name="Ensure no package installation was left half-done")
    # chrony's configuration goes first so that the package's first start already uses it.
    chrony_changes = [_template(chrony_conf), _template(chrony_default)]
    apt.packages(
        name="Ensure base packages are installed",
        packages=settings.packages,
        update=True,
        cache_time=settings.apt_cache_seconds,
    )
    systemd.service(name="Ensure chrony is running and enabled", service="chrony", running=True, enabled=True)
    systemd.service(
        name="Ensure chrony runs with its configuration",
        service="chrony",
        restarted=True,
        _if=any_changed(*chrony_changes),
    )

    server.hostname(name="Ensure the hostname is set", hostname=node.name)
    file_block(
        name="Ensure cluster hosts are in /etc/hosts",
        path="/etc/hosts",
        lines=hosts_block,
        marker=HOSTS_MARKER,
    )

    _template(modules_conf)
    for module in settings.kernel_modules:
        kernel_module(
            name=f"Ensure kernel module {module.name} is available", module=module.name, kconfig=module.kconfig
        )
    _template(sysctl_conf)
    for key, value in settings.sysctls.items():
        server.sysctl(name=f"Ensure sysctl {key} = {value}", key=key, value=_sysctl_value(value))

    if settings.swap_off:
        swap_disabled(name="Ensure swap is off")

    journald_changed = _template(journald_conf)
    systemd.service(
        name="Ensure journald runs with its limits",
        service="systemd-journald",
        running=True,
        restarted=True,
        _if=journald_changed.did_change,
    )

    account = settings.service_account
    server.group(name=f"Ensure group {account.name} exists", group=account.name, system=True)
    server.user(
        name=f"Ensure service account {account.name} exists",
        user=account.name,
        group=account.name,
        home=account.home,
        shell="/usr/sbin/nologin",
        system=True,
        create_home=True,
    )
    files.directory(
        name=f"Ensure {account.home} is private", path=account.home, user=account.name, group=account.name, mode="750"
    )
