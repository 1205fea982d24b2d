"""roles.gpu.nvidia against what real machines printed (tests/fixtures/gpu, sources in its README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roles.gpu.nvidia import (
    QUERY_FIELDS,
    SMI_FALLEN_OFF_BUS,
    SMI_NO_DEVICES,
    SMI_NO_DRIVER,
    GpuReading,
    KernelModule,
    PciDevice,
    named,
    nvidia_names,
    parse_pci_listing,
    parse_proc_version,
    parse_smi_header,
    parse_smi_query,
    smi_failure,
    xid_events,
)

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"

#: nvidia-smi's exit code for "Driver/library version mismatch", as `echo $?` printed it (anderskm/gputil#55).
SMI_VERSION_MISMATCH = 18
#: nvidia-smi's exit code for an invalid query field ("exit status 2", canonical/inference-snaps#128).
SMI_INVALID_ARGUMENT = 2


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --- nvidia-smi's table header ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "driver", "cuda"),
    [
        ("smi_table_h100_sxm_x8_565.txt", "565.57.01", "12.7"),
        ("smi_table_a100_sxm4_80gb_x4_555.txt", "555.42.02", "12.5"),
        ("smi_table_l40s_550.txt", "550.127.05", "12.4"),
        ("smi_table_l4_x4_550.txt", "550.144.03", "12.4"),
        ("smi_table_a100_sxm4_40gb_mig_580.txt", "580.126.09", "13.0"),
        ("smi_table_a100_sxm4_40gb_x8_mig_450.txt", "450.80.02", "11.0"),
        ("smi_table_a100_pcie_40gb_mig_535.txt", "535.161.08", "12.2"),
        ("smi_table_a800_x8_mig_pending_525.txt", "525.125.06", "12.0"),
        # R610 renamed the header's fields: "KMD Version" and "CUDA UMD Version".
        ("smi_table_b200_kmd_610.txt", "610.43.02", "13.3"),
    ],
)
def test_header_gives_driver_and_cuda_version(name, driver, cuda):
    assert parse_smi_header(fixture(name)) == (driver, cuda)


def test_header_does_not_take_the_nvidia_smi_version_for_the_driver():
    """The header line cut before its driver field: `NVIDIA-SMI 610.43.02` alone is not the driver's version."""
    first_line = next(line for line in fixture("smi_table_b200_kmd_610.txt").splitlines() if "NVIDIA-SMI" in line)
    assert parse_smi_header(first_line.split("KMD Version")[0]) == (None, None)


@pytest.mark.parametrize(
    "name", ["smi_fail_no_driver.txt", "smi_fail_version_mismatch_535.txt", "smi_fail_no_devices.txt"]
)
def test_header_of_a_failure_is_empty(name):
    assert parse_smi_header(fixture(name)) == (None, None)


@pytest.mark.parametrize(
    ("table", "query"),
    [
        ("smi_table_h100_sxm_x8_565.txt", "smi_query_h100_sxm_x8_mig_disabled.csv"),
        ("smi_table_l40s_550.txt", "smi_query_l40s_mig_na.csv"),
        ("smi_table_l4_x4_550.txt", "smi_query_l4_x4_mig_na.csv"),
        ("smi_table_a100_sxm4_40gb_mig_580.txt", "smi_query_a100_sxm4_40gb_i0_mig_enabled.csv"),
        ("smi_table_a100_pcie_40gb_mig_535.txt", "smi_query_a100_pcie_40gb_mig_enabled_persistence_disabled.csv"),
        ("smi_table_a800_x8_mig_pending_525.txt", "smi_query_a800_x8_mig_pending.csv"),
    ],
)
def test_header_and_query_of_one_machine_agree_on_the_driver(table, query):
    driver, _ = parse_smi_header(fixture(table))
    assert {reading.driver_version for reading in parse_smi_query(fixture(query))} == {driver}


# --- nvidia-smi --query-gpu ---------------------------------------------------------------------


def test_query_h100_node_with_mig_off():
    readings = parse_smi_query(fixture("smi_query_h100_sxm_x8_mig_disabled.csv"))
    assert [r.index for r in readings] == list(range(8))
    assert readings[0].uuid == "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
    assert readings[7].uuid == "GPU-33135771-a848-ece1-b61e-489e221d663c"
    assert len({r.uuid for r in readings}) == 8
    for reading in readings:
        assert reading.name == "NVIDIA H100 80GB HBM3"
        assert reading.driver_version == "565.57.01"
        assert reading.memory_mib == 81559
        assert reading.compute_capability == "9.0"
        assert reading.persistence_mode is True
        assert (reading.mig_current, reading.mig_pending) == ("Disabled", "Disabled")
        assert reading.mig_change_pending is False


def test_query_gpu_without_mig_support_reads_none():
    (reading,) = parse_smi_query(fixture("smi_query_l40s_mig_na.csv"))
    assert reading == GpuReading(
        index=0,
        uuid="GPU-1db6b1cf-de5e-b497-caca-1a027578d587",
        name="NVIDIA L40S",
        driver_version="550.127.05",
        memory_mib=46068,
        compute_capability="8.9",
        persistence_mode=True,
        mig_current=None,
        mig_pending=None,
    )
    assert reading.mig_change_pending is False


def test_query_l4_node():
    readings = parse_smi_query(fixture("smi_query_l4_x4_mig_na.csv"))
    assert [(r.index, r.uuid) for r in readings] == [
        (0, "GPU-c2507ce8-9002-692b-09ab-a911bef79d62"),
        (1, "GPU-1a401bbb-397e-f2ab-8727-67ae75b10d44"),
        (2, "GPU-d72a67a9-98af-e739-eaaa-4f6ccbf067d6"),
        (3, "GPU-7575d30e-08e9-0606-7c8b-56eec2028340"),
    ]
    assert {(r.name, r.memory_mib, r.compute_capability, r.mig_current) for r in readings} == {
        ("NVIDIA L4", 23034, "8.9", None)
    }


def test_query_mig_enabled_on_every_gpu_queried():
    (reading,) = parse_smi_query(fixture("smi_query_a100_sxm4_40gb_i0_mig_enabled.csv"))
    assert reading.uuid == "GPU-9e4aeb94-01c0-5173-4811-4ca60f77b3a9"
    assert reading.name == "NVIDIA A100-SXM4-40GB"
    assert reading.memory_mib == 40960
    assert reading.compute_capability == "8.0"
    assert (reading.mig_current, reading.mig_pending) == ("Enabled", "Enabled")
    assert reading.mig_change_pending is False


def test_query_data_centre_card_with_persistence_disabled():
    (reading,) = parse_smi_query(fixture("smi_query_a100_pcie_40gb_mig_enabled_persistence_disabled.csv"))
    assert reading.name == "NVIDIA A100-PCIE-40GB"
    assert reading.driver_version == "535.161.08"
    assert reading.persistence_mode is False
    assert reading.mig_current == "Enabled"


def test_query_mig_pending_on_one_gpu():
    readings = parse_smi_query(fixture("smi_query_a800_x8_mig_pending.csv"))
    assert len(readings) == 8
    assert [r.index for r in readings if r.mig_change_pending] == [7]
    assert (readings[7].mig_current, readings[7].mig_pending) == ("Disabled", "Enabled")
    assert {(r.mig_current, r.mig_pending) for r in readings[:7]} == {("Disabled", "Disabled")}
    assert {(r.name, r.memory_mib, r.persistence_mode) for r in readings} == {("NVIDIA A800 80GB PCIe", 81920, True)}


def test_query_skips_a_header_line():
    """Without `noheader` nvidia-smi prints the field names first; they are no GPU."""
    text = ", ".join(QUERY_FIELDS) + "\n" + fixture("smi_query_l40s_mig_na.csv")
    assert [r.uuid for r in parse_smi_query(text)] == ["GPU-1db6b1cf-de5e-b497-caca-1a027578d587"]


@pytest.mark.parametrize(
    "name",
    [
        "smi_fail_no_driver.txt",
        "smi_fail_version_mismatch_535.txt",
        "smi_fail_no_devices.txt",
        "smi_fail_gpu_lost.txt",
        "smi_fail_compute_cap_field.txt",
        "smi_table_h100_sxm_x8_565.txt",
    ],
)
def test_query_of_anything_else_reads_no_gpu(name):
    assert parse_smi_query(fixture(name)) == []


# --- nvidia-smi's failures ----------------------------------------------------------------------


def test_success_is_no_failure():
    assert smi_failure(0, fixture("smi_table_h100_sxm_x8_565.txt")) is None


def test_failure_driver_not_loaded():
    message = smi_failure(SMI_NO_DRIVER, fixture("smi_fail_no_driver.txt"))
    assert message == "nvidia-smi cannot reach the driver (kernel module not loaded)"
    # The text alone is enough when the code is not nvidia-smi's own.
    assert smi_failure(1, fixture("smi_fail_no_driver.txt")) == message


@pytest.mark.parametrize("name", ["smi_fail_version_mismatch_535.txt", "smi_fail_version_mismatch_legacy.txt"])
def test_failure_version_mismatch(name):
    assert smi_failure(SMI_VERSION_MISMATCH, fixture(name)) == (
        "the loaded kernel module and the user-space library differ (Driver/library version mismatch)"
    )


def test_failure_no_devices():
    message = smi_failure(SMI_NO_DEVICES, fixture("smi_fail_no_devices.txt"))
    assert message == "the driver sees no GPU (No devices were found)"
    assert smi_failure(1, fixture("smi_fail_no_devices.txt")) == message


@pytest.mark.parametrize("name", ["smi_fail_gpu_lost.txt", "smi_fail_unknown_error.txt"])
def test_failure_gpu_gone_by_exit_code(name):
    assert smi_failure(SMI_FALLEN_OFF_BUS, fixture(name)) == "a GPU has fallen off the bus"


def test_failure_gpu_lost_by_text():
    """nvidia-smi's words for a lost GPU say "GPU is lost", not "fallen off the bus"."""
    assert smi_failure(255, fixture("smi_fail_gpu_lost.txt")) == "a GPU has fallen off the bus"


def test_failure_unknown_error_is_passed_on():
    """ "Unknown Error" alone does not say why; the message keeps nvidia-smi's first line."""
    assert smi_failure(255, fixture("smi_fail_unknown_error.txt")) == (
        "nvidia-smi failed with exit code 255: Unable to determine the device handle for GPU0000:A1:00.0: Unknown Error"
    )


def test_failure_invalid_field_is_passed_on():
    assert smi_failure(SMI_INVALID_ARGUMENT, fixture("smi_fail_compute_cap_field.txt")) == (
        'nvidia-smi failed with exit code 2: Field "compute_cap" is not a valid field to query.'
    )


def test_failure_not_installed():
    assert smi_failure(127, "") == "nvidia-smi is not installed"
    assert smi_failure(1, "") == "nvidia-smi failed with exit code 1"


# --- /proc/driver/nvidia/version ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("proc_version_proprietary_535.txt", KernelModule("535.183.01", open=False)),
        ("proc_version_proprietary_384.txt", KernelModule("384.98", open=False)),
        ("proc_version_open_565.txt", KernelModule("565.57.01", open=True)),
        ("proc_version_open_aarch64_jetson.txt", KernelModule("35.3.1", open=True)),
    ],
)
def test_proc_version(name, module):
    assert parse_proc_version(fixture(name)) == module


def test_proc_version_without_module_is_none():
    assert parse_proc_version("") is None
    # The kernel log's "NVRM: loading ..." line is not the proc file.
    assert parse_proc_version(fixture("kmsg_xid79_fallen_off_bus.log")) is None


# --- Xid events in the kernel log ---------------------------------------------------------------


def test_xid_79_fallen_off_the_bus():
    assert xid_events(fixture("kmsg_xid79_fallen_off_bus.log")) == [("0000:a1:00", 79)]


def test_xid_31_mmu_faults():
    assert xid_events(fixture("kmsg_xid31_mmu_fault.log")) == [("0000:01:00", 31), ("0000:01:00", 31)]


def test_xid_counts_each_line_once_not_the_previous_xid_it_names():
    events = xid_events(fixture("kmsg_xid45_after_149.log"))
    assert {code for _, code in events} == {45}
    assert [slot for slot, _ in events] == [
        "0000:dc:00",
        "0000:ed:00",
        "0000:ba:00",
        "0000:97:00",
        "0000:dc:00",
        "0000:ba:00",
        "0000:ed:00",
    ]


def test_kernel_log_without_xid():
    assert xid_events(fixture("kmsg_no_devices_rm_init_failed.log")) == []


def test_xid_events_keep_log_order_across_logs():
    log = fixture("kmsg_xid31_mmu_fault.log") + fixture("kmsg_xid79_fallen_off_bus.log")
    assert xid_events(log) == [("0000:01:00", 31), ("0000:01:00", 31), ("0000:a1:00", 79)]


# --- PCI listing and pci.ids --------------------------------------------------------------------

H100_SLOTS = [f"0000:{bus}:00.0" for bus in ("1b", "43", "52", "61", "9d", "c3", "d1", "df")]


def test_pci_listing_h100_node_leaves_out_nvswitches_and_the_bmc_vga():
    devices = parse_pci_listing(fixture("sysfs_pci_h100_sxm_x8_nvswitch.txt"))
    assert [d.slot for d in devices] == H100_SLOTS
    assert {(d.device_id, d.pci_class, d.driver, d.model) for d in devices} == {("2330", "0x030200", None, None)}
    assert all(d.is_gpu for d in devices)


def test_pci_listing_is_in_slot_order_whatever_the_input_order():
    lines = fixture("sysfs_pci_h100_sxm_x8_nvswitch.txt").splitlines()
    assert [d.slot for d in parse_pci_listing("\n".join(reversed(lines)))] == H100_SLOTS


def test_pci_listing_l40s_node_keeps_each_gpus_driver_and_leaves_out_the_nics():
    devices = parse_pci_listing(fixture("sysfs_pci_l40s_x2_mlx5.txt"))
    assert [(d.slot, d.device_id, d.driver) for d in devices] == [
        ("0000:61:00.0", "26b9", "vfio-pci"),
        ("0000:e1:00.0", "26b9", "nvidia"),
    ]


def test_nvswitch_is_no_gpu():
    line = next(line for line in fixture("sysfs_pci_h100_sxm_x8_nvswitch.txt").splitlines() if " 0x22a3 " in line)
    slot, _, device, pci_class = line.split()
    assert PciDevice(slot, device.removeprefix("0x"), pci_class).is_gpu is False


def test_nvidia_names_from_pci_ids():
    names = nvidia_names(fixture("pci.ids"))
    assert names["2330"] == "GH100 [H100 SXM5 80GB]"
    assert names["22a3"] == "GH100 [H100 NVSwitch]"
    assert names["26b9"] == "AD102GL [L40S]"
    assert names["27b8"] == "AD104GL [L4]"
    assert names["20b0"] == "GA100 [A100 SXM4 40GB]"
    assert names["20f5"] == "GA100 [A800 80GB PCIe]"
    assert names["05e7"] == "GT200GL [Tesla C1060 / M1060]"
    assert len(names) == 17


def test_nvidia_names_skip_subsystems_and_other_vendors():
    names = nvidia_names(fixture("pci.ids"))
    # Subsystem lines ("\t\t10de 0595  Tesla T10 Processor", "\t\t3842 1150 ...") are no devices.
    assert not {"10de", "3842", "0595"} & names.keys()
    # Evans & Sutherland's 0100 before NVIDIA, Emulex's 0720 after.
    assert not {"0100", "0720", "0722"} & names.keys()


def test_named_gives_each_gpu_its_pci_ids_name():
    names = nvidia_names(fixture("pci.ids"))
    h100 = named(parse_pci_listing(fixture("sysfs_pci_h100_sxm_x8_nvswitch.txt")), names)
    assert [d.slot for d in h100] == H100_SLOTS
    assert {d.model for d in h100} == {"GH100 [H100 SXM5 80GB]"}
    l40s = named(parse_pci_listing(fixture("sysfs_pci_l40s_x2_mlx5.txt")), names)
    assert [(d.model, d.driver) for d in l40s] == [("AD102GL [L40S]", "vfio-pci"), ("AD102GL [L40S]", "nvidia")]


def test_named_keeps_what_pci_ids_does_not_know():
    devices = parse_pci_listing(fixture("sysfs_pci_l40s_x2_mlx5.txt"))
    names = {k: v for k, v in nvidia_names(fixture("pci.ids")).items() if k != "26b9"}
    assert [d.model for d in named(devices, names)] == [None, None]
