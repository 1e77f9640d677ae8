"""docker/: the compose file is valid and publishes only on loopback, with health checks and
secrets from the env file; the Kubernetes manifests are valid (core kinds and every pod template
under kubernetes-validate, KubeRay's kinds against its documented CRD fields)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"

#: KubeRay's ray.io/v1 CRD fields (ray-operator/config/crd/bases), the levels these files use
KUBERAY: dict[str, set[str]] = {
    "RayCluster.spec": {
        "rayVersion",
        "enableInTreeAutoscaling",
        "autoscalerOptions",
        "headGroupSpec",
        "workerGroupSpecs",
        "headServiceAnnotations",
        "suspend",
        "managedBy",
        "gcsFaultToleranceOptions",
    },
    "headGroupSpec": {"rayStartParams", "template", "serviceType", "headService", "enableIngress"},
    "workerGroupSpecs[]": {
        "groupName",
        "replicas",
        "minReplicas",
        "maxReplicas",
        "rayStartParams",
        "template",
        "numOfHosts",
        "scaleStrategy",
        "suspend",
        "idleTimeoutSeconds",
    },
    "RayJob.spec": {
        "entrypoint",
        "runtimeEnvYAML",
        "rayClusterSpec",
        "clusterSelector",
        "metadata",
        "jobId",
        "shutdownAfterJobFinishes",
        "ttlSecondsAfterFinished",
        "activeDeadlineSeconds",
        "submitterPodTemplate",
        "submitterConfig",
        "submissionMode",
        "entrypointNumCpus",
        "entrypointNumGpus",
        "entrypointResources",
        "suspend",
        "backoffLimit",
        "managedBy",
        "deletionStrategy",
    },
}


def documents() -> list[dict[str, Any]]:
    return [d for p in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def compose_config(tmp_path: Path) -> dict[str, Any]:
    """``docker-compose config`` of docker/compose.yaml with the example env file."""
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: make test installs it (apt-get install docker-compose)"
    shutil.copy(DOCKER / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(DOCKER / "blocknas.env.example", tmp_path / "blocknas.env")
    proc = subprocess.run(
        [exe, "-f", "compose.yaml", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_is_valid_loopback_only_with_health_checks(tmp_path: Path) -> None:
    services = compose_config(tmp_path)["services"]
    assert set(services) == {"postgres", "ray-head", "ray-worker", "dashboard"}
    published = []
    for name, s in services.items():
        assert s.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert "blocknas.env" not in str(s.get("environment", {}))  # values came from the file
        for port in s.get("ports", []):
            text = port if isinstance(port, str) else f"{port.get('host_ip')}:{port['published']}"
            assert text.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            published.append(name)
    assert sorted(published) == ["dashboard", "ray-head"]
    assert services["ray-head"]["environment"]["RAY_AUTH_MODE"] == "token"
    source = (DOCKER / "compose.yaml").read_text()
    assert "change-me" not in source  # secrets live in the env file, not the compose file
    # blocknas, not compose, expands the password: the dashboard's URL keeps ${PGPASSWORD}
    assert "${PGPASSWORD}" in " ".join(services["dashboard"]["command"]).replace("$$", "$")


def test_core_kinds_and_pod_templates_are_valid_kubernetes(tmp_path: Path) -> None:
    import kubernetes_validate

    core, templates = [], []
    for doc in documents():
        if doc["apiVersion"].startswith("ray.io/"):
            templates += pod_templates(doc)
        else:
            core.append(doc)
    assert {d["kind"] for d in core} >= {"Secret", "Service", "StatefulSet", "ConfigMap"}
    assert len(templates) == 4  # head, cpu and gpu workers, the RayJob's submitter
    for doc in core + templates:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each pod template of a KubeRay object, as a core PodTemplate (validated like any pod)."""
    spec = doc["spec"]
    found = []
    if doc["kind"] == "RayCluster":
        found.append(spec["headGroupSpec"]["template"])
        found += [g["template"] for g in spec["workerGroupSpecs"]]
    if "submitterPodTemplate" in spec:
        found.append(spec["submitterPodTemplate"])
    return [
        {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": f"t{i}"}, "template": t}
        for i, t in enumerate(found)
    ]


def test_kuberay_kinds_use_only_documented_fields() -> None:
    kinds = {d["kind"]: d for d in documents() if d["apiVersion"] == "ray.io/v1"}
    assert set(kinds) == {"RayCluster", "RayJob"}
    cluster, job = kinds["RayCluster"]["spec"], kinds["RayJob"]["spec"]
    assert set(cluster) <= KUBERAY["RayCluster.spec"]
    assert set(cluster["headGroupSpec"]) <= KUBERAY["headGroupSpec"]
    for group in cluster["workerGroupSpecs"]:
        assert set(group) <= KUBERAY["workerGroupSpecs[]"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert set(job) <= KUBERAY["RayJob.spec"]
    # every rayStartParams value is a string (the CRD's map of strings)
    for params in [cluster["headGroupSpec"]["rayStartParams"]] + [
        g["rayStartParams"] for g in cluster["workerGroupSpecs"]
    ]:
        assert all(isinstance(v, str) for v in params.values())
    assert job["clusterSelector"]["ray.io/cluster"] == kinds["RayCluster"]["metadata"]["name"]


def test_the_k8s_search_config_is_a_valid_search_config(tmp_path: Path) -> None:
    from blocknas.search.config import SearchConfig

    cm = next(d for d in documents() if d["kind"] == "ConfigMap")
    cfg = SearchConfig.from_dict(yaml.safe_load(cm["data"]["search.yaml"]))
    assert cfg.resources.gpus == 0.5 and cfg.storage and "${PGPASSWORD}" in cfg.storage


def test_services_stay_inside_the_cluster() -> None:
    for doc in documents():
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP"
    cluster = next(d for d in documents() if d["kind"] == "RayCluster")
    assert cluster["spec"]["headGroupSpec"]["serviceType"] == "ClusterIP"
