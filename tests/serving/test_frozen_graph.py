"""The service's frozen (TorchScript) graph answers what the eager model answers, at any batch size,
and a model that does not trace is served eagerly instead of failing."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from apparel.inference import InferenceRuntime, frozen_graph
from apparel.models.attributes import ApparelNet, ApparelSpec, AttributeSpec
from apparel.models.embedding import EmbeddingSpec


def model(attention: bool = True, local_maps: int = 0) -> ApparelNet:
    torch.manual_seed(0)
    attributes = [AttributeSpec("colour", ["red", "blue", "green"]), AttributeSpec("tags", ["a", "b"], "multilabel")]
    spec = ApparelSpec(EmbeddingSpec("resnet18", 16, 32), attributes, attention=attention, local_maps=local_maps)
    return ApparelNet(spec).eval()


@pytest.mark.parametrize(("attention", "local_maps"), [(False, 0), (True, 0), (False, 2)])
def test_frozen_runtime_equals_eager_at_every_batch_size(attention: bool, local_maps: int) -> None:
    net = model(attention, local_maps)
    eager, frozen = InferenceRuntime(net), InferenceRuntime(net, frozen=True)
    assert isinstance(frozen.network, torch.jit.ScriptModule)
    rng = np.random.default_rng(0)
    for size in (1, 5, 32):
        images = rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
        expected, got = eager.forward(images), frozen.forward(images)
        np.testing.assert_allclose(got.embeddings, expected.embeddings, atol=1e-5)
        for attribute in ("colour", "tags"):
            np.testing.assert_allclose(got.probabilities[attribute], expected.probabilities[attribute], atol=1e-5)


class BatchSizeBranch(ApparelNet):
    """Python control flow on the batch size: a trace would bake the example's size in."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = super().forward(images)
        if images.shape[0] == 2:
            outputs["embedding"] = outputs["embedding"] * 0
        return outputs


def test_a_model_that_does_not_trace_the_same_is_served_eagerly(caplog: pytest.LogCaptureFixture) -> None:
    net = BatchSizeBranch(model().spec).eval()
    with caplog.at_level(logging.WARNING, logger="apparel.inference"):
        assert frozen_graph(net) is net
    assert "serving the model eagerly" in caplog.text
