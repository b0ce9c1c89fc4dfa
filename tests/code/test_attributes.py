import json

import numpy as np
import pandas as pd
import pytest
import torch

from apparel.data.dataset import normalize
from apparel.evaluation.attributes import categorical_metrics, multilabel_metrics
from apparel.losses import MaskedBinaryCrossEntropy, MaskedCrossEntropy
from apparel.models.attributes import LOCAL_WIDTH, ApparelNet, ApparelSpec, AttributeBranch, AttributeSpec
from apparel.models.embedding import EmbeddingSpec
from apparel.train.attributes import (
    AttributeSchedule,
    BranchGradients,
    encode_targets,
    joined,
    labelled_rows,
    parent_branch,
    steps_seen_by_head,
    train_heads,
    train_progressive,
)


def test_masked_cross_entropy_ignores_missing_labels_and_their_gradients() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    targets = torch.tensor([2, -1, 0, -1])
    loss = MaskedCrossEntropy()(logits, targets)
    loss.backward()
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]].detach(), targets[[0, 2]])
    assert torch.isclose(loss, expected)
    assert logits.grad[[1, 3]].abs().sum() == 0 and logits.grad[[0, 2]].abs().sum() > 0
    empty = torch.randn(2, 3, requires_grad=True)
    assert MaskedCrossEntropy()(empty, torch.tensor([-1, -1])).item() == 0.0


def test_masked_binary_cross_entropy_skips_unlabelled_rows() -> None:
    logits = torch.randn(3, 4, requires_grad=True)
    targets = torch.tensor([[1, 0, 0, 1], [-1, -1, -1, -1], [0, 0, 1, 0]])
    MaskedBinaryCrossEntropy()(logits, targets).backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[[0, 2]].abs().sum() > 0


def test_new_branch_starts_from_the_previous_one() -> None:
    previous = AttributeBranch(512, 5)
    same_classes, other_classes = AttributeBranch(512, 5), AttributeBranch(512, 3)
    assert same_classes.init_from(previous) == len(previous.state_dict())
    assert other_classes.init_from(previous) == len(previous.state_dict()) - 2  # classifier weight and bias
    for key, value in previous.features.state_dict().items():
        assert torch.equal(other_classes.features.state_dict()[key], value)
    assert torch.equal(same_classes.classifier.weight, previous.classifier.weight)


def test_branch_init_copies_what_the_spec_says() -> None:
    heel, strap = AttributeSpec("heel", ["flat", "high", "low"]), AttributeSpec("strap", ["long", "none", "short"])
    copied = {}
    for rule in ("previous", "features", "none"):
        model = ApparelNet(ApparelSpec(EmbeddingSpec(embedding_dim=8, image_size=32), branch_init=rule))
        first, second = model.add_branch(heel), model.add_branch(strap)
        same = [torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                  strict=True) if a.is_floating_point() and a.numel() > 1]
        copied[rule] = (all(same[:-2]), all(same[-2:]))  # (feature layers, classifier)
    assert copied == {"previous": (True, True), "features": (True, False), "none": (False, False)}


def model_with(attrs: list[AttributeSpec], local_maps: int = 0, branch_adapter: bool = False) -> ApparelNet:
    model = ApparelNet(ApparelSpec(EmbeddingSpec(embedding_dim=8, image_size=32), local_maps=local_maps,
                                   branch_adapter=branch_adapter))
    for attribute in attrs:
        model.add_branch(attribute)
    return model.eval()


def test_one_forward_pass_returns_the_embedding_and_every_head() -> None:
    model = model_with([AttributeSpec("colour", ["red", "blue", "green"]),
                        AttributeSpec("tags", ["a", "b"], kind="multilabel")])
    calls = []
    model.base.trunk.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 1  # the trunk runs once for all heads
    assert set(out) == {"embedding", "colour", "tags"}
    assert out["embedding"].shape == (2, 8)
    assert torch.allclose(out["colour"].sum(1), torch.ones(2))
    assert ((out["tags"] >= 0) & (out["tags"] <= 1)).all()
    with pytest.raises(ValueError, match="already has a branch"):
        model.add_branch(AttributeSpec("colour", ["x", "y"]))


@pytest.mark.parametrize("local_maps", [0, 2])
def test_save_and_load_round_trip(tmp_path, local_maps: int) -> None:
    model = model_with([AttributeSpec("colour", ["red", "blue"])], local_maps)
    model.save(tmp_path)
    loaded = ApparelNet.load(tmp_path)
    assert loaded.spec.local_maps == local_maps
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert all(torch.equal(model(x)[k], loaded(x)[k]) for k in ("embedding", "colour"))


def loaded_without(field: str, folder) -> ApparelNet:
    """A colour model saved, its spec stripped of ``field`` as a model saved before that field existed, and loaded."""
    model_with([AttributeSpec("colour", ["red", "blue"])]).save(folder)
    spec = json.loads((folder / "spec.json").read_text())
    del spec["apparel"][field]
    (folder / "spec.json").write_text(json.dumps(spec))
    return ApparelNet.load(folder)


def test_a_model_saved_before_local_branches_loads_without_them(tmp_path) -> None:
    assert loaded_without("local_maps", tmp_path).spec.local_maps == 0


def test_local_branches_pool_the_middle_map_under_their_own_heatmaps() -> None:
    torch.manual_seed(0)
    model = model_with([AttributeSpec("sleeve", ["short", "long"]), AttributeSpec("strap", ["none", "long"])], 2)
    sleeve, strap = model.branches["sleeve"], model.branches["strap"]
    assert sleeve.local is not None and sleeve.local is not strap.local
    assert sleeve.classifier.in_features == 64 + 2 * LOCAL_WIDTH  # the last map's features, then the local ones
    stem_calls = []
    model.base.trunk[0].register_forward_hook(lambda *_: stem_calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        assert len(stem_calls) == 1  # the trunk still runs once for the embedding and every head
        assert torch.equal(out["embedding"], model.base(x))  # the embedding is the embedding model's
        before = out["sleeve"]
        sleeve.local.heatmaps[-1].weight[0].mul_(-3.0)  # move where the sleeve's first heatmap looks
        assert not torch.equal(model(x)["sleeve"], before)
        assert torch.equal(model(x)["strap"], out["strap"])  # the strap branch has heatmaps of its own


def test_a_branch_adapter_starts_as_the_plain_branch_and_trains_for_its_own_head_only() -> None:
    torch.manual_seed(0)
    attributes = [AttributeSpec("heel", ["flat", "high"]), AttributeSpec("strap", ["none", "long"])]
    adapted, plain = model_with(attributes, 2, branch_adapter=True), model_with(attributes, 2)
    plain.load_state_dict(adapted.state_dict(), strict=False)  # the same trunk and branches, less the adapters
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        start = adapted(x)
        assert all(torch.allclose(start[k], plain(x)[k]) for k in ("embedding", "heel", "strap"))
    heel = adapted.branches["heel"].adapter
    assert heel is not None and heel is not adapted.branches["strap"].adapter
    adapted.train()
    _, logits = adapted.forward_logits(x)
    logits["heel"].sum().backward()
    assert heel.layers[-1].weight.grad.abs().sum() > 0  # zero at the start, it still learns
    assert adapted.branches["strap"].adapter.layers[-1].weight.grad is None  # heel's loss reaches heel's only
    adapted.eval()
    with torch.no_grad():
        before = adapted(x)
        heel.layers[-1].weight.fill_(1.0)
        moved = adapted(x)
    assert not torch.allclose(moved["heel"], before["heel"])
    assert torch.equal(moved["strap"], before["strap"]) and torch.equal(moved["embedding"], before["embedding"])


def test_a_model_saved_before_branch_adapters_loads_without_them(tmp_path) -> None:
    loaded = loaded_without("branch_adapter", tmp_path)
    assert not loaded.spec.branch_adapter and loaded.branches["colour"].adapter is None


def test_targets_encode_missing_as_minus_one() -> None:
    frame = pd.DataFrame({"colour": ["red", None, "blue"], "tags": ["a|b", None, "b"]})
    specs = [AttributeSpec("colour", ["blue", "red"]), AttributeSpec("tags", ["a", "b"], kind="multilabel")]
    targets = encode_targets(frame, specs)
    assert targets["colour"].tolist() == [1, -1, 0]
    assert targets["tags"].tolist() == [[1, 1], [-1, -1], [0, 1]]


def test_attribute_metrics_on_known_cases() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4]])
    targets = np.array([0, 1, 2, -1])
    scores = categorical_metrics(probabilities, targets, k=2)
    assert scores["accuracy"] == pytest.approx(2 / 3) and scores["recall@2"] == 1.0 and scores["n"] == 3
    assert scores["auc"] == pytest.approx(1.0)  # every true class outranks the others in its column
    multi = multilabel_metrics(np.array([[0.9, 0.2], [0.1, 0.7]]), np.array([[1, 0], [0, 1]]), k=1)
    assert multi["accuracy"] == 1.0 and multi["auc"] == 1.0 and multi["recall@1"] == 1.0


class RowRecorder(torch.nn.Module):
    """A stand-in model that records which rows each batch held: each test image is constant-valued with
    its own index, and normalising keeps that order."""

    def __init__(self) -> None:
        super().__init__()
        self.base, self.head, self.seen = torch.nn.Linear(1, 1), torch.nn.Linear(1, 2), []

    def forward_logits(self, images: torch.Tensor):
        rows = images[:, 0, 0, 0]
        self.seen.append(sorted(rows.tolist()))
        return self.base(rows[:, None]), {"a": self.head(rows[:, None])}


INDEXED_IMAGES = torch.arange(32, dtype=torch.uint8)[:, None, None, None].expand(32, 3, 4, 4).clone()
SPEC_A = AttributeSpec("a", ["x", "y"], "categorical")


def test_successive_phases_draw_new_batches() -> None:
    """Regression (issue 12): train_heads re-seeded its generator per call, so every phase replayed the
    same batches."""
    targets = {"a": torch.randint(0, 2, (32,))}
    schedule, model = AttributeSchedule(batch_size=4), RowRecorder()
    train_heads(model, [SPEC_A], INDEXED_IMAGES, targets, 1, schedule, False, only=model.head)
    train_heads(model, [SPEC_A], INDEXED_IMAGES, targets, 1, schedule, False, only=model.head)
    assert len(model.seen) == 2 and model.seen[0] != model.seen[1]


def test_heads_train_on_the_rows_labelled_for_them() -> None:
    """A vertical-specific attribute is labelled on few rows: every batch is drawn from those rows."""
    labelled = [3, 8, 20]
    targets = {"a": torch.full((32,), -1)}
    targets["a"][labelled] = torch.tensor([0, 1, 1])
    model = RowRecorder()
    train_heads(model, [SPEC_A], INDEXED_IMAGES, targets, 5, AttributeSchedule(batch_size=4), False, only=model.head)
    allowed = sorted(normalize(INDEXED_IMAGES[labelled])[:, 0, 0, 0].tolist())
    assert len(model.seen) == 5 and all(batch == allowed for batch in model.seen)

    targets["a"][:] = -1
    model = RowRecorder()
    loss = train_heads(model, [SPEC_A], INDEXED_IMAGES, targets, 5, AttributeSchedule(batch_size=4), False,
                       only=model.head)
    assert np.isnan(loss) and model.seen == []  # nothing labelled: no steps


def test_labelled_rows_are_those_with_any_of_the_heads_labels() -> None:
    frame = pd.DataFrame({"colour": ["red", None, None, None], "tags": [None, "a", None, None]})
    specs = [AttributeSpec("colour", ["blue", "red"]), AttributeSpec("tags", ["a", "b"], kind="multilabel")]
    targets = encode_targets(frame, specs)
    assert labelled_rows(targets, specs).tolist() == [0, 1]
    assert labelled_rows(targets, specs[1:]).tolist() == [1]


class RowRecorderTwoHeads(RowRecorder):
    def forward_logits(self, images: torch.Tensor):
        embedding, logits = super().forward_logits(images)
        return embedding, {"a": logits["a"], "b": logits["a"]}


def test_balanced_heads_give_each_head_an_equal_share_of_every_batch() -> None:
    """Head "b" is labelled on 2 rows of 32: a balanced joint batch of 4 holds both of them every step."""
    spec_b = AttributeSpec("b", ["x", "y"], "categorical")
    targets = {"a": torch.randint(0, 2, (32,)), "b": torch.full((32,), -1)}
    targets["b"][[5, 9]] = torch.tensor([0, 1])
    model = RowRecorderTwoHeads()
    schedule = AttributeSchedule(batch_size=4, balanced_heads=True)
    train_heads(model, [SPEC_A, spec_b], INDEXED_IMAGES, targets, 6, schedule, False, only=model.head)
    b_rows = normalize(INDEXED_IMAGES[[5, 9]])[:, 0, 0, 0].tolist()
    assert len(model.seen) == 6 and all(len(batch) == 4 and set(b_rows) <= set(batch) for batch in model.seen)
    unbalanced = RowRecorderTwoHeads()
    train_heads(unbalanced, [SPEC_A, spec_b], INDEXED_IMAGES, targets, 6, AttributeSchedule(batch_size=4), False,
                only=unbalanced.head)
    assert not all(set(b_rows) <= set(batch) for batch in unbalanced.seen)  # drawn from every labelled row


def test_one_optimizer_steps_only_what_each_phase_trains() -> None:
    """AttributeSchedule.one_optimizer: every phase shares one AdamW, which holds the trunk and every branch; a
    branch-alone phase must still leave the trunk and the other branches as they were."""
    colour, heel = AttributeSpec("colour", ["red", "blue"]), AttributeSpec("heel", ["flat", "high", "low"])
    model, schedule = model_with([]), AttributeSchedule(batch_size=4, one_optimizer=True)
    images = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    targets = {"colour": torch.randint(0, 2, (16,)), "heel": torch.randint(0, 3, (16,))}

    optimizer = joined(None, model, model.add_branch(colour), schedule)
    train_heads(model, [colour], images, targets, 2, schedule, True, optimizer=optimizer)
    branch = model.add_branch(heel)
    optimizer = joined(optimizer, model, branch, schedule)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("branches.heel")}
    train_heads(model, [heel], images, targets, 2, schedule, False, only=branch, optimizer=optimizer)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # trunk, colour branch untouched
    trunk = next(model.base.parameters())
    assert optimizer.state[trunk]["step"] == 2  # the trunk's moments carried over, not restarted
    assert [group["lr"] for group in optimizer.param_groups] == [schedule.lr, schedule.base_lr, schedule.lr]


def test_overlap_rule_starts_a_branch_from_one_trained_on_its_rows() -> None:
    """Rows 0-3 are shoes, 4-7 bags: the bag's strap starts from colour (labels every row), not from the latest
    branch, heel (shoes only); with every attribute on every row the rule is the paper's, the latest."""
    colour, heel = AttributeSpec("colour", ["red", "blue"]), AttributeSpec("heel", ["flat", "high", "low"])
    strap = AttributeSpec("strap", ["long", "none", "short"])
    none = torch.full((4,), -1)
    targets = {"colour": torch.tensor([0, 1, 0, 1, 0, -1, 1, 0]), "heel": torch.cat([torch.tensor([0, 1, 2, 1]), none]),
               "strap": torch.cat([none, torch.tensor([2, 0, 1, 1])])}
    model = model_with([colour, heel])
    assert parent_branch(model, strap, targets) == "colour"
    targets["heel"] = torch.tensor([0, 1, 2, 1, 0, 1, -1, 2])
    assert parent_branch(model, strap, targets) == "heel"
    assert parent_branch(model_with([]), strap, targets) is None
    with torch.no_grad():  # as if trained: colour's branch no longer equals heel's, its copy
        for parameter in model.branches["colour"].parameters():
            parameter.add_(1.0)
    first = model.branches["colour"].features.state_dict()
    added = model.add_branch(strap, parent="colour").features.state_dict()
    assert all(torch.equal(added[key], value) for key, value in first.items())


def test_a_branch_steps_once_its_head_has_met_its_floor_of_labels() -> None:
    """AttributeSchedule.head_min_rows: heel, labelled on 2 of 16 rows, never meets a floor of 100 labels, so its
    branch keeps its weights through a joint phase while the trunk and the colour branch (every row labelled,
    past the floor on each batch) train."""
    colour, heel = AttributeSpec("colour", ["red", "blue"]), AttributeSpec("heel", ["flat", "high", "low"])
    images = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    targets = {"colour": torch.randint(0, 2, (16,)), "heel": torch.full((16,), -1)}
    targets["heel"][[3, 11]] = torch.tensor([0, 2])
    changed = {}
    for floor in (0, 4):
        model = model_with([colour, heel])
        before = {k: p.clone() for k, p in model.named_parameters()}
        train_heads(model, [colour, heel], images, targets, 3, AttributeSchedule(batch_size=4, head_min_rows=floor),
                    True)
        changed[floor] = {k.split(".")[1] if k.startswith("branches") else "trunk"
                          for k, p in model.named_parameters() if not torch.equal(p, before[k])}
    assert changed == {0: {"trunk", "colour", "heel"}, 4: {"trunk", "colour"}}


def test_held_branch_gradients_are_the_label_weighted_mean_of_the_batches() -> None:
    """Two batches with 1 and 2 heel labels under a floor of 3: after the first the heel branch has no gradient
    (AdamW skips it); after the second it holds the gradient of the masked loss over all three labelled rows."""
    colour, heel = AttributeSpec("colour", ["red", "blue"]), AttributeSpec("heel", ["flat", "high", "low"])
    model = model_with([colour, heel])  # eval mode: no batch statistics, so the rows' losses are independent
    images = normalize(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8))
    heel_targets = torch.tensor([0, -1, -1, -1, 2, 1, -1, -1])
    held = BranchGradients(model, [colour, heel], min_rows=3)

    def backward(rows: slice) -> None:
        model.zero_grad(set_to_none=True)
        _, logits = model.forward_logits(images[rows])
        MaskedCrossEntropy()(logits["heel"], heel_targets[rows]).backward()

    backward(slice(0, 4))
    held.hold({"colour": 4, "heel": 1})
    assert all(p.grad is None for p in model.branches["heel"].parameters())
    backward(slice(4, 8))
    held.hold({"colour": 4, "heel": 2})
    released = [p.grad.clone() for p in model.branches["heel"].parameters()]
    backward(slice(0, 8))  # one batch holding all three labelled rows
    assert all(torch.allclose(r, p.grad, atol=1e-6) for r, p in zip(released, model.branches["heel"].parameters(),
                                                                      strict=True))


class StepCountingNet(ApparelNet):
    """Counts, per head, the backward passes that reach its classifier: the steps in which its loss counts."""

    def __init__(self, spec: ApparelSpec) -> None:
        super().__init__(spec)
        self.steps: dict[str, int] = {}

    def add_branch(self, spec: AttributeSpec, parent: str | None = None) -> AttributeBranch:
        branch = super().add_branch(spec, parent)
        self.steps[spec.name] = 0
        branch.classifier.weight.register_hook(lambda grad: self.steps.update({spec.name: self.steps[spec.name] + 1}))
        return branch


def test_steps_seen_by_head_counts_the_steps_each_head_trains_in() -> None:
    """The README's per-head budget (steps_seen_by_head) against the real progressive schedule."""
    specs = [AttributeSpec("colour", ["red", "blue"]), AttributeSpec("heel", ["flat", "high", "low"]),
             AttributeSpec("strap", ["long", "none"])]
    images = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    targets = {"colour": torch.randint(0, 2, (16,)), "heel": torch.randint(0, 3, (16,)),
               "strap": torch.randint(0, 2, (16,))}
    schedule = AttributeSchedule(branch_steps=2, finetune_steps=3, final_steps_per_head=4, batch_size=4)
    model = StepCountingNet(ApparelSpec(EmbeddingSpec(embedding_dim=8, image_size=32)))
    train_progressive(model, specs, images, targets, schedule, log=lambda line: None)
    assert list(model.steps.values()) == steps_seen_by_head(schedule, 3) == [2 + 3 * 3 + 12, 2 + 3 * 2 + 12, 2 + 3 + 12]
