"""Kubeflow Pipelines components: one per file, each a thin wrapper over ``apparel.stages``.

Component functions import everything they need inside their body (kfp ships only the function
source to the step). ``build`` turns one into a kfp component on the project's image, which already
holds kfp and the project (no pip install at start-up); in cluster mode every task it makes mounts
the shared PVC at the data root and runs as the image's non-root user.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from kfp import dsl, kubernetes

from apparel.config import Config
from apparel.kuberay import UID


def data_mount(config: Config) -> str:
    """Where the shared PVC is mounted: the data root, the same path in every step and RayJob pod."""
    mount = PurePosixPath(str(config.data.root))
    if not mount.is_absolute():
        raise ValueError(f"cluster mode needs an absolute data.root (the PVC's mount path), not '{mount}'")
    return str(mount)


def build(function: Callable, config: Config) -> Callable[..., dsl.PipelineTask]:
    component = dsl.component(function, base_image=config.pipeline.images.get(function.__name__,
                                                                              config.pipeline.base_image),
                              install_kfp_package=False)
    if config.mode != "cluster":
        return component
    mount = data_mount(config)

    def on_cluster(**arguments) -> dsl.PipelineTask:
        task = component(**arguments)
        kubernetes.mount_pvc(task, pvc_name=config.pipeline.pvc_name, mount_path=mount)
        kubernetes.set_security_context(task, run_as_user=UID, run_as_group=UID, run_as_non_root=True)
        return task

    return on_cluster
