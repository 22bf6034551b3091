"""Gamma weight-decay policy (paper F): categories by structure, groups covering every param."""

from collections import Counter

import pytest
import timm
import torch
from timm.optim import create_optimizer_v2
from torch import nn

from zoo.guidelines import classify_norms, gamma_decay_groups
from zoo.guidelines.gamma_decay import CATEGORIES, INNER, LAST_IN_BRANCH, OUTSIDE, SHORTCUT

EXPECTED_COUNTS = {
    "resnet50": {LAST_IN_BRANCH: 16, SHORTCUT: 4, INNER: 32, OUTSIDE: 1},
    "resnext50_32x4d": {LAST_IN_BRANCH: 16, SHORTCUT: 4, INNER: 32, OUTSIDE: 1},
    "resnetv2_50": {LAST_IN_BRANCH: 16, SHORTCUT: 4, INNER: 28, OUTSIDE: 1},
    "convnext_tiny": {LAST_IN_BRANCH: 18, SHORTCUT: 0, INNER: 0, OUTSIDE: 5},
    "vit_small_patch16_224": {LAST_IN_BRANCH: 24, SHORTCUT: 0, INNER: 0, OUTSIDE: 1},
}


def counts(categories):
    found = Counter(categories.values())
    return {c: found.get(c, 0) for c in CATEGORIES}


@pytest.mark.parametrize("name", list(EXPECTED_COUNTS))
def test_category_counts(name):
    assert counts(classify_norms(timm.create_model(name))) == EXPECTED_COUNTS[name]


def test_resnet50_table():
    categories = classify_norms(timm.create_model("resnet50"))
    assert categories["bn1"] == OUTSIDE  # the stem
    for block in ("layer1.0", "layer2.3", "layer3.5", "layer4.2"):
        assert categories[f"{block}.bn1"] == INNER
        assert categories[f"{block}.bn2"] == INNER
        assert categories[f"{block}.bn3"] == LAST_IN_BRANCH
    for layer in range(1, 5):
        assert categories[f"layer{layer}.0.downsample.1"] == SHORTCUT


def test_resnetv2_50_table():
    categories = classify_norms(timm.create_model("resnetv2_50"))
    for stage in range(4):
        # pre-activation of a downsampling block feeds the shortcut conv
        assert categories[f"stages.{stage}.blocks.0.norm1"] == SHORTCUT
        assert categories[f"stages.{stage}.blocks.1.norm1"] == INNER
        assert categories[f"stages.{stage}.blocks.0.norm2"] == INNER
        assert categories[f"stages.{stage}.blocks.0.norm3"] == LAST_IN_BRANCH
    assert categories["norm"] == OUTSIDE


def test_convnext_tiny_table():
    categories = classify_norms(timm.create_model("convnext_tiny"))
    outside = sorted(n for n, c in categories.items() if c == OUTSIDE)
    assert outside == [
        "head.norm",
        "stages.1.downsample.0",
        "stages.2.downsample.0",
        "stages.3.downsample.0",
        "stem.1",
    ]
    assert categories["stages.2.blocks.8.norm"] == LAST_IN_BRANCH


def test_vit_small_table():
    categories = classify_norms(timm.create_model("vit_small_patch16_224"))
    assert categories["norm"] == OUTSIDE
    assert categories["blocks.0.norm1"] == LAST_IN_BRANCH
    assert categories["blocks.11.norm2"] == LAST_IN_BRANCH


class OddlyNamedResidual(nn.Module):
    """Structure of a post-activation bottleneck with names that mean nothing."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 1)
        self.q = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.zz = nn.BatchNorm2d(8)
        self.side = nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8))
        self.top = nn.BatchNorm2d(8)

    def forward(self, x):
        x = torch.relu(self.top(x))  # the fork is the activation, not the norm
        y = self.zz(self.b(torch.relu(self.q(self.a(x)))))
        return torch.relu(y + self.side(x))


def test_a_norm_feeding_a_shortcut_with_weights_is_a_shortcut_norm():
    """The pre-activation case (ResNetV2 downsampling blocks): the norm is the fork itself."""

    class PreAct(OddlyNamedResidual):
        def forward(self, x):
            x = self.top(x)
            return self.zz(self.b(torch.relu(self.q(self.a(x))))) + self.side(x)

    assert classify_norms(PreAct())["top"] == SHORTCUT


def test_categories_come_from_structure_not_names():
    assert classify_norms(OddlyNamedResidual()) == {
        "q": INNER,
        "zz": LAST_IN_BRANCH,
        "side.1": SHORTCUT,
        "top": OUTSIDE,
    }


@pytest.mark.parametrize("name", ["resnet50", "convnext_tiny", "vit_small_patch16_224"])
def test_groups_cover_every_parameter_once_and_work_with_timm(name):
    model = timm.create_model(name)
    groups = gamma_decay_groups(model, weight_decay=0.05)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    optimizer = create_optimizer_v2(groups, "sgd", lr=0.1, weight_decay=0.05)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(ids)
    decays = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    for row in groups.report:
        assert decays[id(params[f"{row.name}.weight"])] == (0.05 if row.decay else 0.0)
        assert decays[id(params[f"{row.name}.bias"])] == 0.0  # betas: as timm does
    assert "category" in groups.table()


def test_resnet50_paper_policy_decays_exactly_the_right_gammas():
    model = timm.create_model("resnet50")
    groups = gamma_decay_groups(model, 1e-4)
    decayed = {id(p) for p in groups[1]["params"]}
    params = dict(model.named_parameters())
    assert id(params["layer1.0.bn3.weight"]) in decayed
    assert id(params["layer1.0.bn1.weight"]) in decayed
    assert id(params["layer1.0.downsample.1.weight"]) not in decayed
    assert id(params["bn1.weight"]) not in decayed
    assert id(params["fc.weight"]) in decayed
    assert id(params["fc.bias"]) not in decayed
    assert groups.counts() == EXPECTED_COUNTS["resnet50"]


@pytest.mark.parametrize(
    ("policy", "decayed_categories"),
    [
        ("paper", {LAST_IN_BRANCH, INNER}),
        ("all", set(CATEGORIES)),
        ("none", set()),
        ({SHORTCUT: True, INNER: False}, {LAST_IN_BRANCH, SHORTCUT}),
    ],
)
def test_policies(policy, decayed_categories):
    groups = gamma_decay_groups(timm.create_model("resnet18"), 0.01, policy=policy)
    assert {r.category for r in groups.report if r.decay} == decayed_categories


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("strict", "policy must be one of paper, all, none"),
        ({"last": True}, "unknown categories"),
        ({INNER: "yes"}, "True or False"),
    ],
)
def test_bad_policies_are_named(policy, message):
    with pytest.raises(ValueError, match=message):
        gamma_decay_groups(timm.create_model("resnet18"), 0.01, policy=policy)


def test_bad_weight_decay_is_named():
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0"):
        gamma_decay_groups(timm.create_model("resnet18"), -1.0)
