"""Dropout position (paper D): exactly one per branch before its last conv, and before GAP."""

import pytest
import timm
import torch
from torch import nn

import zoo  # noqa: F401  (registers the variants)
from zoo.guidelines import place_dropout
from zoo.guidelines.dropout import DropoutPlacedResNet

# (variant, base, block attribute that must receive the dropout output, block count)
CASES = [
    ("resnet18_dropfix", "resnet18", "conv2", 8),
    ("resnet50_dropfix", "resnet50", "conv3", 16),
    ("resnetv2_50_dropfix", "resnetv2_50", "conv3", 16),
]


def dropout_modules(model):
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
    }


@pytest.mark.parametrize(("variant", "base", "_", "__"), CASES)
def test_eval_mode_equals_the_base_with_the_same_weights(variant, base, _, __):
    torch.manual_seed(0)
    reference = timm.create_model(base).eval()
    model = timm.create_model(variant, branch_drop_rate=0.1, drop_rate=0.2).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    assert model.state_dict().keys() == reference.state_dict().keys()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


@pytest.mark.parametrize(("variant", "_", "last_conv", "blocks"), CASES)
def test_training_applies_dropout_exactly_at_the_documented_positions(
    variant, _, last_conv, blocks
):
    model = timm.create_model(variant, branch_drop_rate=0.1, drop_rate=0.2).train()
    drops = dropout_modules(model)
    branch = {n for n in drops if n.endswith(".branch_drop")}
    assert len(branch) == blocks
    assert set(drops) == branch | {"head_drop"}, "dropout somewhere it should not be"
    assert all(type(m) is nn.Dropout for m in drops.values()), "must be element-wise dropout"
    assert model.drop_rate == 0.0  # timm's dropout after pooling is off

    outputs, consumed = {}, {}
    for name, module in drops.items():
        module.register_forward_hook(lambda m, a, out, name=name: outputs.__setitem__(name, out))
    for name in branch:
        conv = model.get_submodule(name.rsplit(".", 1)[0] + "." + last_conv)
        conv.register_forward_pre_hook(lambda m, a, name=name: consumed.__setitem__(name, a[0]))
    pool = model.global_pool if hasattr(model, "global_pool") else model.head.global_pool
    pool.register_forward_pre_hook(lambda m, a: consumed.__setitem__("head_drop", a[0]))

    model(torch.randn(2, 3, 64, 64))
    assert set(outputs) == set(drops)
    for name in drops:
        # each dropout's output is exactly what the next weight layer / the pooling consumes
        assert consumed[name] is outputs[name], name
    assert outputs["head_drop"].ndim == 4  # the feature map, before pooling
    for name in branch:  # after an activation: the dropout never sees negative values
        assert (outputs[name] >= 0).all()


def test_place_dropout_on_a_timm_instance():
    torch.manual_seed(0)
    model = timm.create_model("resnet50").eval()
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    assert place_dropout(model, 0.1, 0.2) is model
    assert isinstance(model, DropoutPlacedResNet)
    assert model.state_dict().keys() == reference.keys()
    with torch.no_grad():
        assert torch.equal(model(x), before)
    place_dropout(model, 0.3, 0.0)  # again: only the probabilities change
    assert {m.p for n, m in dropout_modules(model).items()} == {0.3}


@pytest.mark.parametrize(
    ("branch_p", "head_p", "name"), [(1.0, 0.1, "branch_p"), (0.1, -0.1, "head_p")]
)
def test_probabilities_are_checked(branch_p, head_p, name):
    with pytest.raises(ValueError, match=name):
        place_dropout(timm.create_model("resnet18"), branch_p, head_p)


def test_unsupported_models_are_refused():
    with pytest.raises(TypeError, match="supports timm ResNet, ResNetV2"):
        place_dropout(timm.create_model("vit_tiny_patch16_224"), 0.1, 0.1)


def test_pretrained_tag_is_an_exact_conversion(hub_cache, timm_checkpoint):
    checkpoint, base_logits = timm_checkpoint("resnet18")
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": checkpoint})
    report = hub_cache.load_pretrained(
        "resnet18_dropfix.a1_in1k", checkpoint, branch_drop_rate=0.1, drop_rate=0.2
    )
    assert report["same"]
    assert report["new"] == report["dropped"] == []
    assert report["init_warnings"] == []
    assert torch.equal(torch.tensor(report["logits"]), base_logits)
