"""roles/gpu_stack without a cluster: the toolkit's wiring for each supported pair of operator and RKE2
versions, the HelmChart manifests (checked offline against Kubernetes' schemas and the HelmChart CRD's),
the profile's checks, the driver-owner labels and the allocatable GPUs fact."""

from __future__ import annotations

import copy
import json

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gpuaas.errors import ProfileError
from gpuaas.profile import REPO_ROOT, Profile, load_profile
from roles.gpu_stack import config, runtime
from roles.gpu_stack.facts import allocatable_gpus
from tests.conftest import write_profile

SOCKET = "/run/k3s/containerd/containerd.sock"
OPERATOR_MANIFEST = "/var/lib/rancher/rke2/server/manifests/gpuaas-gpu-operator.yaml"
DEVICE_PLUGIN_MANIFEST = "/var/lib/rancher/rke2/server/manifests/gpuaas-nvidia-device-plugin.yaml"

# --- runtime: how the toolkit is wired into RKE2's containerd -------------------------------------

CDI = {"toolkit": {"env": [{"name": "CONTAINERD_SOCKET", "value": SOCKET}]}, "cdi": {"enabled": True}}
VOLUME_MOUNTS = {
    "cdi": {"enabled": False},
    "toolkit": {
        "env": [
            {"name": "CONTAINERD_SOCKET", "value": SOCKET},
            {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"},
            {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "value": "true"},
        ]
    },
    "devicePlugin": {"env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}]},
}
SOCKET_ONLY = {"toolkit": {"env": [{"name": "CONTAINERD_SOCKET", "value": SOCKET}]}}


@pytest.mark.parametrize(
    "operator,rke2,values,runtime_class",
    [
        ("v25.10.1", "v1.32.2+rke2r1", CDI, False),
        ("v25.10.1", "v1.33.1+rke2r1", CDI, False),
        ("v25.10.1", "v1.31.5+rke2r1", VOLUME_MOUNTS, True),
        ("v25.10.1", "v1.30.9+rke2r1", VOLUME_MOUNTS, True),
        ("v25.3.4", "v1.32.2+rke2r1", VOLUME_MOUNTS, True),
        ("v24.9.2", "v1.31.6+rke2r1", SOCKET_ONLY, True),
    ],
)
def test_each_supported_pair_gets_its_wiring(operator, rke2, values, runtime_class):
    assert runtime.operator_runtime_values(operator, rke2) == values
    assert runtime.wiring(operator, rke2).runtime_class is runtime_class


def test_cdi_goes_only_with_operator_25_10_on_containerd_2():
    assert runtime.wiring("v25.10.1", "v1.32.2+rke2r1").label == "operator 25.10+ on containerd 2.0+ (CDI)"
    assert runtime.wiring("v25.10.1", "v1.31.5+rke2r1").label == "operator 25.3+ (volume mounts, runtime class)"
    assert runtime.wiring("v24.9.2", "v1.31.6+rke2r1").label == "operator 24.9 (runtime class)"


@pytest.mark.parametrize("rke2", ["v1.32.2+rke2r1", "v1.30.9+rke2r1"])
def test_an_operator_older_than_24_9_is_unsupported(rke2):
    with pytest.raises(runtime.UnsupportedVersions, match=r"GPU Operator v24\.6\.2 .* pin v24\.9 or newer"):
        runtime.wiring("v24.6.2", rke2)
    with pytest.raises(runtime.UnsupportedVersions):
        runtime.operator_runtime_values("v24.6.2", rke2)


@pytest.mark.parametrize(
    "rke2,ships_containerd2",
    [
        ("v1.30.14+rke2r1", False),
        ("v1.31.5+rke2r1", False),
        ("v1.31.6+rke2r1", True),
        ("v1.32.1+rke2r1", False),
        ("v1.32.2+rke2r1", True),
        ("v1.33.0+rke2r1", True),
        ("v1.34.1+rke2r1", True),
    ],
)
def test_containerd2_boundaries(rke2, ships_containerd2):
    assert runtime.containerd2(rke2) is ships_containerd2


# --- the profile ----------------------------------------------------------------------------------

LOCAL_RAW = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())
RKE2_URL = "https://github.com/rancher/rke2/releases/download/v1.32.2%2Brke2r1/rke2.linux-amd64.tar.gz"
CHART_URL = "https://helm.ngc.nvidia.com/nvidia/charts/gpu-operator-v25.10.1.tgz"


def _local(tmp_path, mutate=None, rke2: str | None = "v1.32.2+rke2r1") -> Profile:
    """inventories/local.yml (one server, one GPU agent whose driver is the distro's) with RKE2 pinned at
    `rke2` (none: unpinned), changed by `mutate`, loaded from a copy."""
    raw = copy.deepcopy(LOCAL_RAW)
    raw.setdefault("roles", {})["gpu"] = {"driver": {"method": "distro", "branch": "535", "version": "535.261.03"}}
    raw["roles"]["gpu_stack"] = {"provider": "operator"}
    raw["artifacts"].pop("rke2", None)
    if rke2 is not None:
        raw["artifacts"]["rke2"] = {"version": rke2, "url": RKE2_URL, "sha256": "a" * 64}
    if mutate is not None:
        mutate(raw)
    return load_profile(write_profile(tmp_path, raw, env="local"))


def _refused(tmp_path, mutate, rke2: str | None = "v1.32.2+rke2r1") -> dict[str, list[str]]:
    """Field path -> reasons of the problems loading the changed profile reports."""
    with pytest.raises(ProfileError) as failure:
        _local(tmp_path, mutate, rke2)
    found: dict[str, list[str]] = {}
    for problem in failure.value.problems:
        found.setdefault(problem.path, []).append(problem.reason)
    return found


def _operator_on_the_agent(raw):
    raw["hosts"][1]["roles"] = {"gpu": {"driver": {"method": "operator"}}}


def _stack(**settings):
    def mutate(raw):
        raw["roles"]["gpu_stack"] = settings

    return mutate


def _document(profile: Profile, path: str) -> dict:
    text = config.manifests(profile)[path]
    assert text.startswith("# Managed by gpuaas roles/gpu_stack.\n")
    return yaml.safe_load(text)


def _values(document: dict) -> dict:
    return yaml.safe_load(document["spec"]["valuesContent"])


# --- config: the HelmCharts -----------------------------------------------------------------------


def test_the_operator_helmchart_for_distro_drivers_on_containerd_2(tmp_path):
    profile = _local(tmp_path)
    assert list(config.manifests(profile)) == [OPERATOR_MANIFEST]
    document = _document(profile, OPERATOR_MANIFEST)
    assert {k: v for k, v in document.items() if k != "spec"} == {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "gpu-operator", "namespace": "kube-system"},
    }
    spec = {k: v for k, v in document["spec"].items() if k != "valuesContent"}
    assert spec == {
        "chart": "gpu-operator",
        "repo": "https://helm.ngc.nvidia.com/nvidia",
        "version": "v25.10.1",
        "targetNamespace": "gpu-operator",
        "createNamespace": True,
    }
    assert _values(document) == {
        "driver": {"enabled": False},
        "toolkit": {"enabled": True, "env": [{"name": "CONTAINERD_SOCKET", "value": SOCKET}]},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {"enabled": True},
        "migManager": {"enabled": False},
        "mig": {"strategy": "single"},
        "cdi": {"enabled": True},
    }


def test_one_host_whose_driver_the_operator_owns_enables_the_driver_container(tmp_path):
    values = _values(_document(_local(tmp_path, _operator_on_the_agent), OPERATOR_MANIFEST))
    assert values["driver"] == {"enabled": True}


def test_mig_strategy_and_extra_values_come_from_the_settings(tmp_path):
    extra = {"nfd": {"enabled": False}, "validator": {"plugin": {"env": [{"name": "WITH_WORKLOAD", "value": "false"}]}}}
    profile = _local(tmp_path, _stack(provider="operator", operator={"mig_strategy": "mixed", "values": extra}))
    values = _values(_document(profile, OPERATOR_MANIFEST))
    assert values["mig"] == {"strategy": "mixed"}
    assert values["nfd"] == {"enabled": False}
    assert values["validator"] == {"plugin": {"env": [{"name": "WITH_WORKLOAD", "value": "false"}]}}
    assert values["driver"] == {"enabled": False}


def test_an_older_rke2_gets_volume_mounts_in_the_operators_values(tmp_path):
    values = _values(_document(_local(tmp_path, rke2="v1.31.5+rke2r1"), OPERATOR_MANIFEST))
    assert values["cdi"] == {"enabled": False}
    assert values["devicePlugin"] == {
        "enabled": True,
        "env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}],
    }
    assert {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "value": "true"} in values["toolkit"]["env"]


def test_a_chart_archive_is_served_by_the_servers_instead_of_the_repository(tmp_path):
    def archive(raw):
        raw["artifacts"]["gpu-operator-chart"] = {"version": "v25.10.1", "url": CHART_URL, "sha256": "b" * 64}
        raw["roles"]["gpu_stack"] = {"operator": {"chart": {**_default_chart(), "archive": "gpu-operator-chart"}}}

    spec = _document(_local(tmp_path, archive), OPERATOR_MANIFEST)["spec"]
    assert spec["chart"] == "https://%{KUBERNETES_API}%/static/charts/gpu-operator-v25.10.1.tgz"
    assert "repo" not in spec and "version" not in spec
    assert spec["targetNamespace"] == "gpu-operator"


def _default_chart() -> dict:
    return {"version": "v25.10.1", "repo": "https://helm.ngc.nvidia.com/nvidia", "namespace": "gpu-operator"}


def test_the_device_plugin_provider_writes_its_own_helmchart(tmp_path):
    profile = _local(tmp_path, _stack(provider="device-plugin"))
    assert list(config.manifests(profile)) == [DEVICE_PLUGIN_MANIFEST]
    document = _document(profile, DEVICE_PLUGIN_MANIFEST)
    assert document["metadata"] == {"name": "nvidia-device-plugin", "namespace": "kube-system"}
    assert {k: v for k, v in document["spec"].items() if k != "valuesContent"} == {
        "chart": "nvidia-device-plugin",
        "repo": "https://nvidia.github.io/k8s-device-plugin",
        "version": "0.17.4",
        "targetNamespace": "nvidia-device-plugin",
        "createNamespace": True,
    }
    assert _values(document) == {
        "migStrategy": "none",
        "runtimeClassName": "nvidia",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
    }


def test_provider_none_writes_nothing(tmp_path):
    assert config.manifests(_local(tmp_path, _stack(provider="none"))) == {}


def test_nothing_is_written_while_rke2_is_not_pinned(tmp_path):
    profile = _local(tmp_path, rke2=None)
    assert config.rke2_version(profile) is None
    assert config.manifests(profile) == {}
    assert config.unpinned_rke2(profile) == "it goes into the RKE2 cluster, whose release is not pinned"


def test_only_the_servers_render_the_manifests(tmp_path):
    profile = _local(tmp_path)
    assert list(config.rendered_files(profile, profile.host("local-server"))) == [OPERATOR_MANIFEST]
    assert config.rendered_files(profile, profile.host("local-gpu-1")) == {}


# --- offline schema validation --------------------------------------------------------------------

#: Kubernetes' name rules (apimachinery's IsDNS1123Subdomain and IsDNS1123Label): the API server checks
#: them, the OpenAPI schemas kubernetes-validate uses do not.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

#: The fields of helm.cattle.io/v1 HelmChart the role writes, with their types as k3s-io/helm-controller's
#: CRD (pkg/crds/yaml/generated/helm.cattle.io_helmcharts.yaml) declares them; any other spec field is
#: refused, so a misspelt one shows.
HELMCHART_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "helm.cattle.io/v1"},
        "kind": {"const": "HelmChart"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "maxLength": 253, "pattern": DNS1123_SUBDOMAIN},
                "namespace": {"type": "string", "maxLength": 63, "pattern": DNS1123_LABEL},
            },
        },
        "spec": {
            "type": "object",
            "required": ["chart", "targetNamespace", "valuesContent"],
            "additionalProperties": False,
            "properties": {
                "chart": {"type": "string", "minLength": 1},
                "repo": {"type": "string"},
                "version": {"type": "string"},
                "targetNamespace": {"type": "string", "maxLength": 63, "pattern": DNS1123_LABEL},
                "createNamespace": {"type": "boolean"},
                "valuesContent": {"type": "string"},
            },
        },
    },
}

KUBERNETES = ("1.32", "1.33")


def _check(document: dict, kubernetes: str) -> None:
    """The HelmChart against the CRD's fields, its metadata as Kubernetes' ObjectMeta (a ConfigMap carries
    the same), and the Namespace its targetNamespace creates; raises on the first that does not validate."""
    jsonschema.validate(document, HELMCHART_SCHEMA)
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document["metadata"], "data": {}}
    assert kubernetes_validate.validate(carrier, kubernetes, strict=True) == kubernetes
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": document["spec"]["targetNamespace"]}}
    assert kubernetes_validate.validate(namespace, kubernetes, strict=True) == kubernetes


@pytest.mark.parametrize("kubernetes", KUBERNETES)
@pytest.mark.parametrize(
    "mutate,rke2,path",
    [
        (None, "v1.32.2+rke2r1", OPERATOR_MANIFEST),
        (_operator_on_the_agent, "v1.33.1+rke2r1", OPERATOR_MANIFEST),
        (_stack(provider="device-plugin"), "v1.32.2+rke2r1", DEVICE_PLUGIN_MANIFEST),
    ],
    ids=["operator", "operator-driver", "device-plugin"],
)
def test_the_manifests_validate_offline(tmp_path, kubernetes, mutate, rke2, path):
    document = _document(_local(tmp_path, mutate, rke2), path)
    _check(document, kubernetes)


@pytest.mark.parametrize("kubernetes", KUBERNETES)
def test_a_broken_manifest_fails_validation(tmp_path, kubernetes):
    document = _document(_local(tmp_path), OPERATOR_MANIFEST)
    _check(copy.deepcopy(document), kubernetes)

    not_a_name = copy.deepcopy(document)
    not_a_name["metadata"]["name"] = "GPU_Operator"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        _check(not_a_name, kubernetes)

    name_of_another_type = copy.deepcopy(document)
    name_of_another_type["metadata"]["name"] = 42
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": name_of_another_type["metadata"]}
    with pytest.raises(kubernetes_validate.ValidationError, match="42 is not of type 'string'"):
        kubernetes_validate.validate(carrier, kubernetes, strict=True)

    unknown_metadata = copy.deepcopy(document)
    unknown_metadata["metadata"]["lables"] = {"app": "gpu-operator"}
    with pytest.raises(kubernetes_validate.ValidationError, match="'lables' was unexpected"):
        _check(unknown_metadata, kubernetes)

    string_flag = copy.deepcopy(document)
    string_flag["spec"]["createNamespace"] = "true"
    with pytest.raises(jsonschema.ValidationError, match="'true' is not of type 'boolean'"):
        _check(string_flag, kubernetes)

    misspelt = copy.deepcopy(document)
    misspelt["spec"]["valueContent"] = misspelt["spec"].pop("valuesContent")
    with pytest.raises(jsonschema.ValidationError):
        _check(misspelt, kubernetes)

    bad_namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ["gpu-operator"]}}
    with pytest.raises(kubernetes_validate.ValidationError, match="is not of type 'string'"):
        kubernetes_validate.validate(bad_namespace, kubernetes, strict=True)


# --- checks ---------------------------------------------------------------------------------------


def test_an_operator_driver_without_the_operator_provider_is_refused(tmp_path):
    def device_plugin_and_operator_driver(raw):
        _operator_on_the_agent(raw)
        raw["roles"]["gpu_stack"] = {"provider": "device-plugin"}

    found = _refused(tmp_path, device_plugin_and_operator_driver)
    assert list(found) == ["hosts[1].roles.gpu.driver.method"]
    (reason,) = found["hosts[1].roles.gpu.driver.method"]
    assert reason.startswith("is operator on local-gpu-1, but roles.gpu_stack.provider is device-plugin")


def test_operator_values_owned_by_the_role_are_refused(tmp_path):
    found = _refused(tmp_path, _stack(operator={"values": {"driver": {"enabled": True}, "nfd": {}}}))
    assert list(found) == ["roles.gpu_stack.operator.values"]
    assert found["roles.gpu_stack.operator.values"][0].startswith("driver come from this role's own settings")


def test_a_chart_archive_naming_an_unpinned_artifact_is_refused(tmp_path):
    found = _refused(tmp_path, _stack(operator={"chart": {**_default_chart(), "archive": "gpu-operator-chart"}}))
    assert found == {
        "roles.gpu_stack.operator.chart.archive": ["names an artifact that `artifacts` does not pin"],
    }


def test_an_unsupported_operator_version_is_refused_once_rke2_is_pinned(tmp_path):
    old = _stack(operator={"chart": {**_default_chart(), "version": "v24.6.2"}})
    found = _refused(tmp_path, old)
    assert list(found) == ["roles.gpu_stack.operator.chart.version"]
    assert found["roles.gpu_stack.operator.chart.version"][0].endswith("pin v24.9 or newer")
    # Without a pinned RKE2 the wiring is not chosen yet: the same profile loads.
    assert _local(tmp_path, old, rke2=None).roles["gpu_stack"]["operator"]["chart"]["version"] == "v24.6.2"


def test_an_invalid_rke2_setting_is_reported_not_raised_by_the_gpu_stacks_check(tmp_path):
    def bad_rke2(raw):
        raw["roles"]["rke2"] = {"artifact": "Not An Artifact"}

    found = _refused(tmp_path, bad_rke2)
    assert list(found) == ["roles.rke2.artifact"]


# --- config: who owns each GPU node's driver ------------------------------------------------------


def test_driver_labels_name_each_gpu_nodes_driver_owner(tmp_path):
    assert config.driver_labels(_local(tmp_path)) == {"local-gpu-1": "false"}
    assert config.driver_labels(_local(tmp_path, _operator_on_the_agent)) == {"local-gpu-1": "true"}


def test_the_device_plugin_provider_labels_nothing(tmp_path):
    assert config.driver_labels(_local(tmp_path, _stack(provider="device-plugin"))) == {}


# --- facts: what the nodes advertise --------------------------------------------------------------

NODES = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "local-gpu-1", "labels": {"nvidia.com/gpu.present": "true"}},
            "status": {
                "allocatable": {"cpu": "32", "memory": "263856128Ki", "nvidia.com/gpu": "8", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "263958528Ki", "nvidia.com/gpu": "8", "pods": "110"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "local-server", "labels": {"node-role.kubernetes.io/control-plane": "true"}},
            "status": {"allocatable": {"cpu": "8", "memory": "32768000Ki", "pods": "110"}},
        },
    ],
    "metadata": {"resourceVersion": ""},
}


def test_allocatable_gpus_per_node():
    assert allocatable_gpus(json.dumps(NODES, indent=4)) == {"local-gpu-1": 8, "local-server": 0}


@pytest.mark.parametrize("output", ["", "The connection to the server 127.0.0.1:6443 was refused", '{"items": ['])
def test_output_that_is_not_json_gives_no_nodes(output):
    assert allocatable_gpus(output) == {}


def test_an_rke2_chart_named_like_the_gpu_stacks_manifest_is_refused(tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "staging.yml").read_text())
    raw["roles"]["rke2"] = {"helm_charts": [{"name": "gpu-operator", "chart": "gpu-operator"}]}
    with pytest.raises(ProfileError) as refused:
        load_profile(write_profile(tmp_path, raw))
    assert "roles.rke2.helm_charts[0].name: is the name of a manifest roles/gpu_stack writes" in str(refused.value)


@pytest.mark.parametrize("kubernetes", ["1.32", "1.33"])
def test_the_cuda_sample_pod_validates_and_asks_for_one_gpu_on_its_node(kubernetes):
    from roles.gpu_stack.sample import sample_pod

    pod = sample_pod("stg-gpu-1", "registry.example.com/cuda-sample:vectoradd", runtime_class=True)
    kubernetes_validate.validate(pod, kubernetes, strict=True)
    assert pod["spec"]["nodeName"] == "stg-gpu-1" and pod["spec"]["runtimeClassName"] == "nvidia"
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert "runtimeClassName" not in sample_pod("stg-gpu-1", "img", runtime_class=False)["spec"]
    broken = copy.deepcopy(pod)
    broken["spec"]["restartPolicy"] = ["Never"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes, strict=True)
