import json

import pytest

from zoo.hub.registry import RegistryError, load_registry


def test_example_entry_loads_with_all_fields(registry_dir):
    registry = load_registry(registry_dir)
    variant = registry.variant("resnet50_kp")
    assert variant.paper == "H"
    assert [w.tag for w in variant.weights] == ["a1_in1k", "ft_in1k"]
    assert variant.weights[0].metrics[0].value == pytest.approx(80.1)
    assert variant.weights_status() == "a1_in1k (exact), ft_in1k (trained)"
    assert registry.papers["H"].url == "https://arxiv.org/abs/2108.13576"


def test_shipped_registry_is_valid():
    registry = load_registry()
    assert sorted(registry.papers) == list("ABCDEFGH")
    for variant in registry:
        assert variant.paper in registry.papers


def test_unknown_variant_lists_the_registered_ones(registry_dir):
    with pytest.raises(KeyError, match="registered: resnet50_kp"):
        load_registry(registry_dir).variant("resnet51_kp")


def set_field(key, value):
    return lambda entry: entry.update({key: value})


def drop_field(key):
    return lambda entry: entry.pop(key)


def set_weight_field(index, **changes):
    return lambda entry: entry["weights"][index].update(changes)


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (set_field("paper", "Z"), "paper", "not a paper"),
        (set_field("family", "keras"), "family", "expected one of timm, mmseg"),
        (set_field("family", "mmseg"), "config", "missing"),
        (set_field("name", "resnet50_x"), "name", "must equal the file name"),
        (set_field("params_m", "25M"), "params_m", "expected a number"),
        (set_field("base_arch", "resnet50"), "base_arch", "unknown field"),
        (drop_field("summary"), "summary", "missing"),
        (set_weight_field(0, kind="approx"), "weights[0].kind", "expected one of exact, init"),
        (set_weight_field(0, source=None), "weights[0].source", "missing"),
        (set_weight_field(1, sha256="abc"), "weights[1].sha256", "does not match"),
        (set_weight_field(1, hub_id=None), "weights[1].hub_id", "missing"),
        (set_weight_field(1, tag="a1_in1k"), "weights[1].tag", "duplicate tag"),
        (
            set_weight_field(0, metrics=[{"dataset": "x", "split": "val", "name": "top1"}]),
            "weights[0].metrics[0].value",
            "missing",
        ),
    ],
)
def test_schema_errors_name_file_and_field(registry_dir, make_variant, mutate, field, problem):
    entry = make_variant()
    mutate(entry)
    path = registry_dir / "resnet50_kp.json"
    path.write_text(json.dumps(entry))
    with pytest.raises(RegistryError, match=problem) as info:
        load_registry(registry_dir)
    assert info.value.field == field
    assert str(info.value).startswith(f"{path}: field '{field}'")


def test_invalid_json_names_the_file(registry_dir):
    (registry_dir / "resnet50_kp.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"resnet50_kp\.json: field '<file>': not valid JSON"):
        load_registry(registry_dir)


def test_missing_papers_file_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match=r"papers\.json"):
        load_registry(tmp_path)


def test_registry_and_timm_agree_on_the_variants():
    """Every zoo model registered in timm has an entry; every entry names real models."""
    import timm

    import zoo

    registry = load_registry()
    registered = {name for module in zoo.models.__all__ for name in timm.list_models(module=module)}
    assert registered, "no zoo model is registered with timm"
    assert registered <= set(registry.variants), registered - set(registry.variants)
    for variant in registry:
        if variant.family == "timm":
            assert timm.is_model(variant.name), f"{variant.name}: not a timm model"
            assert timm.is_model(variant.base_architecture), variant.base_architecture
