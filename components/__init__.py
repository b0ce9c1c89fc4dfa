"""Kubeflow Pipelines components: one per file, each a thin wrapper over ``apparel.stages``.

Component functions import everything they need inside their body (kfp ships only the function
source to the step). ``build`` turns one into a kfp component on the image the config names.
"""

from __future__ import annotations

from collections.abc import Callable

from kfp import dsl

from apparel.config import PipelineConfig


def build(function: Callable, config: PipelineConfig) -> dsl.base_component.BaseComponent:
    return dsl.component(function, base_image=config.images.get(function.__name__, config.base_image))
