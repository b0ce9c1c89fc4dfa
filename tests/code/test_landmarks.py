import json

import numpy as np
import pandas as pd
import torch
from PIL import Image

from apparel.losses.landmarks import MaskedLandmarkLoss
from apparel.models.attributes import AttributeSpec
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.models.landmarks import LandmarkAttributeNet
from apparel.models.pooling import soft_argmax
from apparel.train.attributes import AttributeSchedule
from apparel.train.landmarks import (
    encode_landmarks,
    flip_landmarks,
    landmark_names,
    mirror_order,
    train_jointly,
    train_landmark_ablation,
)

SPECS = [AttributeSpec("colour", ["red", "blue", "green"]), AttributeSpec("tags", ["a", "b"], kind="multilabel")]
NAN = float("nan")


def net(landmarks: list[str] | None) -> LandmarkAttributeNet:
    torch.manual_seed(0)
    return LandmarkAttributeNet(EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=64)), SPECS, landmarks)


def test_soft_argmax_finds_a_sharp_peak_at_its_cell_centre() -> None:
    heatmaps = torch.zeros(1, 2, 6, 8)
    heatmaps[0, 0, 2, 5] = 50.0  # row 2, column 5
    heatmaps[0, 1, 5, 0] = 50.0
    weights, coordinates = soft_argmax(heatmaps)
    assert torch.allclose(coordinates[0, 0], torch.tensor([5.5 / 8, 2.5 / 6]), atol=1e-4)
    assert torch.allclose(coordinates[0, 1], torch.tensor([0.5 / 8, 5.5 / 6]), atol=1e-4)
    assert torch.allclose(weights.sum(dim=(2, 3)), torch.ones(1, 2))
    _, flat = soft_argmax(torch.zeros(1, 1, 4, 4))
    assert torch.allclose(flat, torch.full((1, 1, 2), 0.5))  # no peak: the centre


def test_one_trunk_pass_gives_logits_embedding_and_landmarks() -> None:
    model = net(["collar", "hem_left", "hem_right"]).eval()
    calls = []
    model.base.trunk[0].register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        embedding, logits, coordinates = model.forward_outputs(torch.randn(2, 3, 64, 64))
    assert len(calls) == 1
    assert embedding.shape == (2, 8) and logits["colour"].shape == (2, 3) and logits["tags"].shape == (2, 2)
    assert coordinates.shape == (2, 3, 2) and ((coordinates > 0) & (coordinates < 1)).all()
    assert model.branches["colour"].classifier.in_features == 64 + 3 * 32


def test_without_landmarks_it_is_the_global_model_and_smaller() -> None:
    local, plain = net(["collar", "hem"]), net(None).eval()
    with torch.no_grad():
        _, _, coordinates = plain.forward_outputs(torch.randn(2, 3, 64, 64))
        expected = {n: b(plain.base.feature_map(torch.zeros(2, 3, 64, 64))) for n, b in plain.branches.items()}
        _, zeros = plain.forward_logits(torch.zeros(2, 3, 64, 64))
    assert coordinates is None and plain.pooling is None
    assert all(torch.allclose(zeros[n], expected[n], atol=1e-5) for n in expected)  # what AttributeBranch computes
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(plain) < count(local) < 1.02 * count(plain)


def test_landmark_loss_ignores_absent_landmarks_and_gives_them_no_gradient() -> None:
    predicted = torch.rand(3, 2, 2, requires_grad=True)
    targets = torch.tensor([[[0.2, 0.3], [NAN, NAN]],
                            [[NAN, NAN], [NAN, NAN]],  # an image with no landmark at all
                            [[0.9, 0.1], [0.5, 0.5]]])
    loss = MaskedLandmarkLoss()(predicted, targets)
    loss.backward()
    present = [(0, 0), (2, 0), (2, 1)]
    expected = torch.stack([(predicted[i, k] - targets[i, k]).abs().sum() for i, k in present]).mean()
    assert torch.isclose(loss, expected)
    assert torch.isfinite(predicted.grad).all()
    assert predicted.grad[1].abs().sum() == 0 and predicted.grad[0, 1].abs().sum() == 0
    assert predicted.grad[2].abs().sum() > 0
    without = MaskedLandmarkLoss()(predicted[[0, 2]], targets[[0, 2]])
    assert torch.isclose(loss, without)  # the empty image changes nothing
    nothing = torch.rand(2, 2, 2, requires_grad=True)
    empty = MaskedLandmarkLoss()(nothing, torch.full((2, 2, 2), NAN))
    empty.backward()
    assert empty.item() == 0.0 and nothing.grad.abs().sum() == 0


def test_landmarks_are_encoded_as_fractions_of_the_stored_image(tmp_path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (200, 100)).save(path)
    frame = pd.DataFrame({"image": [str(path)] * 2,
                          "landmarks": [json.dumps({"toe": [50.0, 25.0], "heel": [250.0, 10.0]}), None]})
    names = landmark_names(frame)
    coordinates = encode_landmarks(frame, names)
    assert names == ["heel", "toe"]
    assert torch.allclose(coordinates[0, 1], torch.tensor([0.25, 0.25]))
    assert coordinates[0, 0].isnan().all()  # posed out of the picture
    assert coordinates[1].isnan().all()


def test_a_flip_mirrors_x_and_swaps_left_and_right() -> None:
    names = ["hem_left", "hem_right", "toe"]
    assert mirror_order(names) == [1, 0, 2]
    coordinates = torch.tensor([[[0.2, 0.7], [0.8, 0.6], [NAN, NAN]], [[0.1, 0.1], [0.9, 0.1], [0.3, 0.4]]])
    flipped = flip_landmarks(coordinates, mirror_order(names), torch.tensor([True, False]))
    assert torch.allclose(flipped[0, :2], torch.tensor([[0.2, 0.6], [0.8, 0.7]]))
    assert flipped[0, 2].isnan().all() and torch.equal(flipped[1], coordinates[1])


def test_a_few_steps_reduce_the_landmark_loss_on_a_tiny_batch() -> None:
    rng = np.random.default_rng(0)
    images = torch.full((8, 3, 32, 32), 60, dtype=torch.uint8)
    coordinates = torch.full((8, 1, 2), NAN)
    for i in range(8):  # one bright square per image; its centre is the landmark
        x, y = rng.integers(2, 24, 2)
        images[i, :, y : y + 6, x : x + 6] = 250
        coordinates[i, 0] = torch.tensor([(x + 3) / 32, (y + 3) / 32])
    targets = {"colour": torch.tensor([0, 1, 2, 0, 1, 2, 0, -1]), "tags": torch.full((8, 2), -1)}
    torch.manual_seed(0)
    model = LandmarkAttributeNet(EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=32)), SPECS, ["spot"])
    history = train_jointly(model, images, targets, coordinates, 12, AttributeSchedule(batch_size=8, seed=0))
    # From ~0.37 (every heatmap flat, all landmarks at the centre) to well under what any constant scores.
    assert np.mean(history["landmarks"][-3:]) < 0.4 * np.mean(history["landmarks"][:3])


def test_the_ablation_s_systems_start_alike_from_their_own_copy_of_the_trunk() -> None:
    base = EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=32))
    models = train_landmark_ablation(base, SPECS, torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
                                     {"colour": torch.zeros(4, dtype=torch.long), "tags": torch.zeros(4, 2)},
                                     torch.full((4, 2, 2), NAN), ["toe", "heel"], steps=0, seed=3)
    assert set(models) == {"global", "landmark", "local_unsupervised"}
    assert models["global"].pooling is None and models["landmark"].pooling is not None
    features = [m.branches["colour"].features.state_dict() for m in models.values()]
    assert all(torch.equal(f[k], features[0][k]) for f in features[1:] for k in features[0])
    supervised, unsupervised = models["landmark"].state_dict(), models["local_unsupervised"].state_dict()
    assert all(torch.equal(value, unsupervised[key]) for key, value in supervised.items())
    assert all(m.base is not base for m in models.values())
    assert torch.equal(models["landmark"].base.head.weight, base.head.weight)
