"""roles/gpu without a host: the distro method's packages, pins and apt files, the honest state computed
from constructed facts, the profile's checks of `gpu:` and `roles.gpu`, and the files render writes."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import yaml
from pyinfra.api.exceptions import DeployError

from gpuaas.errors import ProfileError
from gpuaas.profile import REPO_ROOT, Gpu, Profile, load_profile
from roles.gpu import config, driver, status
from roles.gpu.facts import DriverState
from roles.gpu.nvidia import GpuReading, KernelModule, PciDevice
from roles.gpu.settings import Driver, GpuSettings
from tests.conftest import write_profile

# --- driver: packages, pins and the apt files ----------------------------------------------------


def test_debian_proprietary_with_persistenced_at_a_pinned_version():
    found = driver.driver_packages(Driver(branch="535", version="535.261.03"), "debian")
    assert found.packages == ("nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced")
    assert found.pins == {
        "nvidia-graphics-drivers": "535.261.03-*",
        "nvidia-modprobe": "535.*",
        "nvidia-persistenced": "535.*",
    }


def test_debian_open_modules_without_persistenced_on_a_branch_only():
    found = driver.driver_packages(Driver(branch="550", kernel_modules="open", persistenced=False), "debian")
    assert found.packages == ("nvidia-open-kernel-dkms", "nvidia-smi", "libcuda1")
    assert found.pins == {
        "nvidia-graphics-drivers": "550.*",
        "nvidia-modprobe": "550.*",
        "nvidia-open-gpu-kernel-modules": "550.*",
    }


def test_debian_open_modules_follow_the_pinned_version_too():
    found = driver.driver_packages(Driver(branch="550", version="550.163.01", kernel_modules="open"), "debian")
    assert found.packages == ("nvidia-open-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced")
    assert found.pins["nvidia-open-gpu-kernel-modules"] == "550.163.01-*"
    assert found.pins["nvidia-graphics-drivers"] == "550.163.01-*"
    assert found.pins["nvidia-persistenced"] == "550.*"


def test_ubuntu_takes_the_server_family_packages():
    proprietary = driver.driver_packages(Driver(branch="535", version="535.261.03"), "ubuntu")
    assert proprietary.packages == ("nvidia-headless-535-server", "nvidia-utils-535-server")
    assert proprietary.pins == {"nvidia-graphics-drivers-535-server": "535.261.03-*"}
    open_modules = driver.driver_packages(Driver(branch="570", kernel_modules="open"), "ubuntu")
    assert open_modules.packages == ("nvidia-headless-570-server-open", "nvidia-utils-570-server")
    assert open_modules.pins == {"nvidia-graphics-drivers-570-server": "570.*"}


def test_preferences_hold_each_pinned_source_above_any_newer_version():
    pins = driver.driver_packages(Driver(branch="535", version="535.261.03"), "debian").pins
    text = driver.preferences_text(pins)
    # apt preferences stanzas are separated by a blank line.
    assert text == (
        "# Managed by gpuaas roles/gpu.\n"
        "Package: src:nvidia-graphics-drivers\nPin: version 535.261.03-*\nPin-Priority: 1001\n"
        "\n"
        "Package: src:nvidia-modprobe\nPin: version 535.*\nPin-Priority: 1001\n"
        "\n"
        "Package: src:nvidia-persistenced\nPin: version 535.*\nPin-Priority: 1001\n"
    )


BOOKWORM = driver.Distribution("debian", "bookworm", "http://deb.debian.org/debian")


def test_sources_name_the_driver_components_and_no_security_archive_the_host_does_not_name():
    text = driver.sources_text(GpuSettings(), BOOKWORM)
    assert text == (
        "# Managed by gpuaas roles/gpu.\n"
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: contrib non-free non-free-firmware\n"
    )
    assert "bookworm-security" not in text


def test_sources_add_the_security_archive_the_host_names():
    found = replace(BOOKWORM, security_mirror="http://security.debian.org/debian-security")
    text = driver.sources_text(GpuSettings(), found)
    assert text.count("Types: deb\n") == 2
    assert (
        "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: contrib non-free non-free-firmware\n"
    ) in text


def test_sources_take_the_settings_mirror_and_components_and_ubuntus_defaults():
    settings = GpuSettings(mirror="https://mirror.example.org/debian/", components=["non-free"])
    text = driver.sources_text(settings, BOOKWORM)
    assert "URIs: https://mirror.example.org/debian\n" in text
    assert "Components: non-free\n" in text
    noble = driver.Distribution("ubuntu", "noble", "http://archive.ubuntu.com/ubuntu")
    assert "Components: restricted multiverse\n" in driver.sources_text(GpuSettings(), noble)
    assert "Suites: noble noble-updates\n" in driver.sources_text(GpuSettings(), noble)


def test_unattended_upgrades_blacklist_lists_every_driver_prefix():
    text = driver.unattended_text()
    assert text.startswith("// Managed by gpuaas roles/gpu.\nUnattended-Upgrade::Package-Blacklist {\n")
    assert text.endswith("};\n")
    listed = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    assert listed == [
        '"nvidia-";',
        '"libnvidia-";',
        '"libcuda1";',
        '"firmware-nvidia-";',
        '"linux-modules-nvidia-";',
    ]


# --- status: the honest state from the facts ------------------------------------------------------

KERNEL = "6.1.0-37-amd64"
VERSION = "535.261.03"
L40S = PciDevice("0000:3b:00.0", "26b9", "0x030200", "nvidia", "AD102GL [L40S]")
L40S_2 = PciDevice("0000:5e:00.0", "26b9", "0x030200", "nvidia", "AD102GL [L40S]")
PINNED = Driver(branch="535", version=VERSION)


def _reading(index: int, mig_current: str | None = None, mig_pending: str | None = None) -> GpuReading:
    return GpuReading(
        index=index,
        uuid=f"GPU-0000000{index}-1111-2222-3333-444444444444",
        name="NVIDIA L40S",
        driver_version=VERSION,
        memory_mib=46068,
        compute_capability="8.9",
        persistence_mode=True,
        mig_current=mig_current,
        mig_pending=mig_pending,
    )


#: A Debian host whose driver is installed, built, loaded and answering for one GPU.
HEALTHY = DriverState(
    kernel=KERNEL,
    loaded=KernelModule(VERSION, open=False),
    built=VERSION,
    packages={
        "nvidia-kernel-dkms": f"{VERSION}-1~deb12u1",
        "nvidia-smi": f"{VERSION}-1~deb12u1",
        "libcuda1:amd64": f"{VERSION}-1~deb12u1",
        f"linux-headers-{KERNEL}": "6.1.140-1",
    },
    held=frozenset({"nvidia-kernel-dkms", "nvidia-smi", "libcuda1"}),
    headers_candidate="6.1.140-1",
    smi_exit=0,
    smi_output=f"0, GPU-00000000, NVIDIA L40S, {VERSION}, 46068, 8.9, Enabled, [N/A], [N/A]",
    gpus=(_reading(0),),
    smi_driver=VERSION,
    cuda="12.2",
    persistenced="active",
)


def _statuses(assessment: status.Assessment) -> list[str]:
    return [f.status for f in assessment.findings]


def test_a_healthy_host_is_ok_with_its_gpus_and_driver_named():
    found = status.assess(Gpu(count=1), PINNED, [L40S], HEALTHY)
    assert found.status == "ok"
    assert [f.message for f in found.findings] == [
        "1 GPU(s) on the PCI bus (AD102GL [L40S])",
        f"driver {VERSION} loaded (proprietary kernel module)",
    ]


def test_no_gpu_on_the_bus_while_one_is_declared_is_drift():
    # Without a GPU the module does not load (NVRM probes no device): the driver waits, the devices drift.
    state = replace(HEALTHY, loaded=None, smi_exit=9, smi_output="", gpus=())
    found = status.assess(Gpu(count=1), PINNED, [], state)
    assert found.status == "drift"
    assert found.findings[0] == status.Finding("drift", "the profile declares 1 GPU(s); sysfs shows no NVIDIA GPU")


def test_another_count_on_the_bus_is_drift_naming_both_counts():
    found = status.assess(Gpu(count=2), PINNED, [L40S], HEALTHY)
    assert found.status == "drift"
    assert found.findings[0].message == "the profile declares 2 GPU(s); sysfs shows 1 (AD102GL [L40S])"
    assert status.Finding("drift", "nvidia-smi reports 1 GPU(s); the profile declares 2") in found.findings


def test_installed_but_unbuilt_without_headers_for_the_kernel_waits_for_a_reboot():
    kernel = "6.12.9-custom"
    state = replace(HEALTHY, kernel=kernel, loaded=None, built=None, headers_candidate=None, smi_exit=9, gpus=())
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "pending"
    (module,) = [f for f in found.findings if f.status == "pending"]
    assert f"not built for {kernel}" in module.message
    assert f"no linux-headers-{kernel}" in module.message
    assert "reboot required" in module.message


def test_installed_but_unbuilt_with_headers_available_is_pending_without_a_reboot():
    state = replace(HEALTHY, loaded=None, built=None, smi_exit=9, gpus=())
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "pending"
    assert found.findings[1].message == f"driver {VERSION} installed; kernel module not built for {KERNEL}"


def test_built_but_not_loaded_needs_a_reboot():
    state = replace(HEALTHY, loaded=None, smi_exit=9, smi_output="NVIDIA-SMI has failed", gpus=())
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "pending"
    assert _statuses(found) == ["ok", "pending"]
    assert found.findings[1].message == f"driver {VERSION} installed; kernel module not loaded: reboot required"


def test_a_loaded_module_of_another_version_than_the_library_fails_as_a_mismatch():
    state = replace(
        HEALTHY,
        loaded=KernelModule("535.247.01", open=False),
        smi_exit=18,
        smi_output="Failed to initialize NVML: Driver/library version mismatch",
        gpus=(),
    )
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "failed"
    mismatch = found.findings[1]
    assert mismatch.status == "failed"
    assert f"kernel module 535.247.01 loaded, user-space library {VERSION}" in mismatch.message
    assert "Driver/library version mismatch: reboot required" in mismatch.message
    assert "Driver/library version mismatch" in found.findings[2].message


def test_nouveau_loaded_beside_the_driver_waits_for_a_reboot():
    found = status.assess(Gpu(count=1), PINNED, [L40S], replace(HEALTHY, nouveau_loaded=True))
    assert found.status == "pending"
    assert status.Finding("pending", "nouveau is loaded: reboot required") in found.findings


def test_nvidia_smi_seeing_no_device_fails():
    state = replace(HEALTHY, smi_exit=6, smi_output="No devices were found", gpus=())
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "failed"
    assert status.Finding("failed", "the driver sees no GPU (No devices were found)") in found.findings


def test_a_mig_change_waiting_on_one_gpu_is_pending_for_that_gpu():
    state = replace(HEALTHY, gpus=(_reading(0, "Disabled", "Disabled"), _reading(1, "Disabled", "Enabled")))
    found = status.assess(Gpu(count=2), PINNED, [L40S, L40S_2], state)
    assert found.status == "pending"
    pending = [f.message for f in found.findings if f.status == "pending"]
    assert pending == ["GPU 1: MIG mode Disabled -> Enabled pending: reset the GPU or reboot"]


def test_xid_79_fails_naming_the_gpus_slot():
    state = replace(HEALTHY, xids=(("0000:3b:00", 79), ("0000:3b:00", 79), ("0000:5e:00", 13)))
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "failed"
    failed = [f.message for f in found.findings if f.status == "failed"]
    assert failed == ["GPU 0000:3b:00 has fallen off the bus (Xid 79): drain the node and power-cycle it"]
    assert status.Finding("drift", "the kernel log has Xid 13 events this boot") in found.findings


def test_the_operator_method_without_host_packages_is_ok():
    state = DriverState(kernel=KERNEL, headers_candidate="6.1.140-1")
    found = status.assess(Gpu(count=1), Driver(method="operator"), [L40S], state)
    assert found.status == "ok"
    assert [f.message for f in found.findings] == ["1 GPU(s) on the PCI bus (AD102GL [L40S])"]


def test_the_distro_method_without_packages_fails():
    state = DriverState(kernel=KERNEL)
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "failed"
    assert found.findings[1] == status.Finding("failed", "no driver package installed")


def test_a_preinstalled_driver_is_read_from_nvidia_smi_or_the_loaded_module():
    loaded = DriverState(kernel=KERNEL, loaded=KernelModule("550.163.01", open=True), smi_exit=0)
    found = status.assess(Gpu(count=1), Driver(method="preinstalled"), [L40S], loaded)
    assert "driver 550.163.01 loaded (open kernel module)" in found.summary()
    nothing = status.assess(Gpu(count=1), Driver(method="preinstalled"), [L40S], DriverState(kernel=KERNEL))
    assert nothing.status == "failed" and "no NVIDIA driver found" in nothing.summary()


def test_an_installed_version_other_than_the_pin_is_drift():
    other = "535.247.01"
    packages = {"nvidia-smi": f"{other}-1~deb12u1", "nvidia-kernel-dkms": f"{other}-1~deb12u1"}
    state = replace(
        HEALTHY,
        packages=packages,
        loaded=KernelModule(other, open=False),
        built=other,
        gpus=(replace(_reading(0), driver_version=other),),
    )
    found = status.assess(Gpu(count=1), PINNED, [L40S], state)
    assert found.status == "drift"
    assert status.Finding("drift", f"driver {other} installed; the profile pins {VERSION}") in found.findings


def test_ubuntus_utils_package_names_the_installed_driver():
    ubuntu = "535.274.02"
    state = replace(
        HEALTHY,
        loaded=KernelModule(ubuntu, open=True),
        built=ubuntu,
        packages={
            "nvidia-headless-535-server-open": f"{ubuntu}-0ubuntu0.24.04.1",
            "nvidia-utils-535-server": f"{ubuntu}-0ubuntu0.24.04.1",
        },
    )
    assert status.installed_driver(state) == ubuntu
    found = status.assess(Gpu(count=1), Driver(branch="535", version=ubuntu), [L40S], state)
    assert found.status == "ok"
    assert found.findings[1].message == f"driver {ubuntu} loaded (open kernel module)"


# --- checks: the profile's `gpu:` entries and roles.gpu -------------------------------------------

LOCAL_RAW = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())


def _local(tmp_path, mutate=None) -> Profile:
    """inventories/local.yml with the role's settings this file relies on, changed by `mutate`, loaded
    from a copy."""
    raw = copy.deepcopy(LOCAL_RAW)
    raw.setdefault("roles", {})["gpu"] = {"driver": {"method": "distro", "branch": "535", "version": VERSION}}
    raw["roles"]["gpu_stack"] = {"provider": "operator"}
    if mutate is not None:
        mutate(raw)
    return load_profile(write_profile(tmp_path, raw, env="local"))


def _refused(tmp_path, mutate) -> dict[str, list[str]]:
    """Field path -> reasons of the problems loading the changed profile reports."""
    with pytest.raises(ProfileError) as failure:
        _local(tmp_path, mutate)
    found: dict[str, list[str]] = {}
    for problem in failure.value.problems:
        found.setdefault(problem.path, []).append(problem.reason)
    return found


def test_the_unchanged_copy_loads_with_its_one_gpu_host(tmp_path):
    profile = _local(tmp_path)
    assert [(h.name, h.gpu.count) for h in profile.hosts if h.gpu is not None] == [("local-gpu-1", 1)]


def test_a_gpu_on_a_data_only_host_is_refused(tmp_path):
    def data_host_with_gpu(raw):
        raw["hosts"].append({"name": "local-data", "address": "172.30.77.12", "groups": ["data"], "gpu": {"count": 1}})

    found = _refused(tmp_path, data_host_with_gpu)
    assert found["hosts[2].gpu"] == [
        "GPUs are used through the cluster: only rke2_agents and rke2_servers hosts declare them"
    ]


def test_a_version_of_another_branch_is_refused_naming_the_version(tmp_path):
    def other_branch(raw):
        raw["roles"]["gpu"]["driver"]["version"] = "550.163.01"

    found = _refused(tmp_path, other_branch)
    assert found == {"roles.gpu.driver.version": ["is not a version of the pinned branch 535 (driver.branch)"]}


def test_a_hosts_own_version_of_another_branch_is_refused_on_its_own_path(tmp_path):
    def other_branch(raw):
        raw["hosts"][1]["roles"] = {"gpu": {"driver": {"branch": "550"}}}

    found = _refused(tmp_path, other_branch)
    assert found == {"hosts[1].roles.gpu.driver.version": ["is not a version of the pinned branch 550 (driver.branch)"]}


def test_an_unknown_key_under_roles_gpu_is_refused(tmp_path):
    def unknown(raw):
        raw["roles"]["gpu"]["drvier"] = {"method": "distro"}

    found = _refused(tmp_path, unknown)
    assert found == {"roles.gpu.drvier": ["unknown key"]}


# --- config: the files render writes -------------------------------------------------------------


def test_a_distro_host_gets_the_blacklist_the_pins_and_the_unattended_blacklist(tmp_path):
    profile = _local(tmp_path)
    files = config.rendered_files(profile, profile.host("local-gpu-1"))
    assert sorted(files) == [
        "/etc/apt/apt.conf.d/51gpuaas-nvidia-unattended-upgrades",
        "/etc/apt/preferences.d/gpuaas-nvidia",
        "/etc/modprobe.d/gpuaas-blacklist-nouveau.conf",
    ]
    assert files["/etc/modprobe.d/gpuaas-blacklist-nouveau.conf"] == (
        "# Managed by gpuaas roles/gpu.\nblacklist nouveau\noptions nouveau modeset=0\n"
    )
    assert "Package: src:nvidia-graphics-drivers\nPin: version 535.261.03-*\n" in files[driver.PREFERENCES]
    assert files[driver.UNATTENDED] == driver.unattended_text()


def test_an_operator_host_gets_only_the_nouveau_blacklist(tmp_path):
    def operator(raw):
        raw["hosts"][1]["roles"] = {"gpu": {"driver": {"method": "operator"}}}

    profile = _local(tmp_path, operator)
    files = config.rendered_files(profile, profile.host("local-gpu-1"))
    assert list(files) == ["/etc/modprobe.d/gpuaas-blacklist-nouveau.conf"]


def test_a_preinstalled_host_and_a_host_without_gpu_get_nothing(tmp_path):
    def preinstalled(raw):
        raw["roles"]["gpu"]["driver"]["method"] = "preinstalled"

    profile = _local(tmp_path, preinstalled)
    assert config.rendered_files(profile, profile.host("local-gpu-1")) == {}
    distro = _local(tmp_path)
    assert distro.host("local-server").gpu is None
    assert config.rendered_files(distro, distro.host("local-server")) == {}


def test_the_driver_rollout_goes_ring_by_ring_and_resumes_past_the_hosts_at_the_pin():
    from roles.gpu.upgrade import NOT_LOADED, rolled_hosts, target_version
    from roles.rke2.upgrade import plan

    prod = load_profile("prod")
    target = target_version(prod)
    assert target == prod.role_settings("gpu", prod.host("prod-gpu-01")).driver.version
    rolled = [node.name for node in rolled_hosts(prod)]
    assert rolled == [f"prod-gpu-0{i}" for i in range(1, 7)]
    loaded = dict.fromkeys(rolled, "535.247.01") | {"prod-gpu-01": target, "prod-gpu-06": NOT_LOADED}
    batches = plan(prod, loaded, target, what="NVIDIA driver")
    # prod-gpu-01 (ring 0) is at the pin already; ring 4's two nodes go one at a time (reserve 1).
    assert [(b.label, b.nodes) for b in batches] == [
        ("ring 1", ("prod-gpu-02",)),
        ("ring 2", ("prod-gpu-03",)),
        ("ring 3", ("prod-gpu-04",)),
        ("ring 4", ("prod-gpu-05",)),
        ("ring 4", ("prod-gpu-06",)),
    ]
    with pytest.raises(DeployError, match="prod-gpu-02 run a newer NVIDIA driver than the pinned"):
        plan(prod, loaded | {"prod-gpu-02": "550.163.01"}, target, what="NVIDIA driver")


def test_a_driver_rollout_needs_one_pinned_version(tmp_path):
    from roles.gpu.upgrade import target_version

    raw = yaml.safe_load((REPO_ROOT / "inventories" / "staging.yml").read_text())
    raw["roles"]["gpu"]["driver"].pop("version")
    with pytest.raises(DeployError, match="roles.gpu.driver.version is not pinned for stg-gpu-1"):
        target_version(load_profile(write_profile(tmp_path, raw)))
