"""Publishing to and loading from the Hugging Face Hub, offline: model cards, measured
registry fields, exact conversions, publish -> download round trip, sha256 and pickle
refusals, and the refuse-to-overwrite paths against a recording HfApi."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import zoo  # noqa: F401  (registers the variants)
from zoo.cli import main
from zoo.hub.cards import stale_cards, write_cards
from zoo.hub.download import UnsafeWeightsError, load_checkpoint_state, sha256_of
from zoo.hub.publish import PublishError, prepare_repo_folder, publish
from zoo.hub.refresh import refresh_registry
from zoo.hub.registry import REGISTRY_ENV, load_registry

REPO = Path(__file__).resolve().parents[1]


def test_every_card_is_regenerated_identically(capsys):
    assert main(["cards", "--check"]) == 0
    assert "all current" in capsys.readouterr().out


def test_stale_missing_and_orphan_cards_are_found(tmp_path):
    cards = tmp_path / "cards"
    write_cards(cards)
    assert stale_cards(cards) == []
    (cards / "resnet50_kp.md").write_text("edited by hand\n")
    (cards / "resnet18_kp.md").unlink()
    (cards / "resnet99.md").write_text("no such variant\n")
    problems = stale_cards(cards)
    assert len(problems) == 3
    assert any("resnet50_kp.md: stale" in p for p in problems)
    assert any("resnet18_kp.md: missing" in p for p in problems)
    assert any("resnet99.md: no registered variant" in p for p in problems)
    assert main(["cards", "--check", "--dir", str(cards)]) == 1


def test_cards_carry_hub_metadata():
    text = (REPO / "model_cards" / "vit_gauss_s16.md").read_text()
    front = text.split("---")[1]
    assert "library_name: timm" in front
    assert "license: apache-2.0" in front
    assert '"arxiv:2305.04722"' in front
    assert 'base_model:\n- "timm/vit_relpos_small_patch16_224.sw_in1k"' in front
    for section in ("## The guideline", "## How to load", "## Weights", "## Metrics",
                    "## Limitations"):  # fmt: skip
        assert section in text
    assert "init: initialised from the source checkpoint" in text


@pytest.mark.mmseg
def test_measured_registry_fields_are_current():
    """params_m and gflops come from `zoo registry refresh`, never by hand."""
    assert refresh_registry(check=True) == []
    assert all(v.params_m and v.gflops for v in load_registry())


def test_registry_refresh_fixes_a_wrong_value(tmp_path):
    shutil.copy(REPO / "registry" / "papers.json", tmp_path)
    entry = json.loads((REPO / "registry" / "resnet18_dropfix.json").read_text())
    expected = entry["params_m"]
    entry["params_m"] = 99.0
    (tmp_path / "resnet18_dropfix.json").write_text(json.dumps(entry))
    assert refresh_registry(tmp_path, check=True) == ["resnet18_dropfix.params_m: 99.0 -> "
                                                      f"{expected}"]  # fmt: skip
    assert main(["registry", "refresh", "--check", "--dir", str(tmp_path)]) == 1
    refresh_registry(tmp_path)
    assert load_registry(tmp_path).variant("resnet18_dropfix").params_m == expected


EXACT = [
    (v.name, w.tag, w.source, v.base_architecture)
    for v in load_registry()
    for w in v.weights
    if w.kind == "exact"
]


def test_there_are_exact_conversions():
    assert {name for name, *_ in EXACT} == {
        "resnet18_dropfix", "resnet50_dropfix", "resnetv2_50_dropfix"
    }  # fmt: skip


@pytest.mark.parametrize(("name", "tag", "source", "base"), EXACT)
def test_exact_conversion_gives_identical_outputs(name, tag, source, base, hub_cache,
                                                  timm_checkpoint):  # fmt: skip
    checkpoint, base_logits = timm_checkpoint(base)
    hub_cache.add(source, {"model.safetensors": checkpoint})
    report = hub_cache.load_pretrained(f"{name}.{tag}", checkpoint)
    assert report["same"]
    assert report["new"] == report["dropped"] == []
    assert report["init_warnings"] == []
    torch.testing.assert_close(torch.tensor(report["logits"]), base_logits, rtol=0, atol=1e-6)


def test_pickle_only_source_is_refused(hub_cache):
    hub_cache.add("timm/resnet18.a1_in1k", {"pytorch_model.bin": b"not even a real pickle"})
    result = subprocess.run(
        [sys.executable, "-c",
         "import timm, zoo; timm.create_model('resnet18_dropfix.a1_in1k', pretrained=True)"],
        capture_output=True, text=True, env={**os.environ, **hub_cache.env}, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "UnsafeWeightsError" in result.stderr
    assert "offers only pickled weights (pytorch_model.bin)" in result.stderr
    assert "never unpickles" in result.stderr


# ----------------------------------------------------------------------------------- publish


@pytest.fixture
def trained_checkpoint(tmp_path):
    """A 'trained' resnet18_dropfix (random weights) as safetensors, and its logits."""
    torch.manual_seed(1)
    model = timm.create_model("resnet18_dropfix").eval()
    path = tmp_path / "trained.safetensors"
    save_file(model.state_dict(), path)
    with torch.no_grad():
        torch.manual_seed(0)
        logits = model(torch.randn(1, 3, 224, 224)).flatten()[:8]
    return path, logits


REPO_ID = "guidezoo/resnet18_dropfix.test_in1k"


def test_dry_run_writes_the_folder_and_changes_nothing(trained_checkpoint, own_registry,
                                                      tmp_path, capsys):  # fmt: skip
    registry, _ = own_registry
    before = (registry / "resnet18_dropfix.json").read_text()
    out = tmp_path / "folder"
    code = main(["publish", str(trained_checkpoint[0]), "--variant", "resnet18_dropfix",
                 "--repo-id", REPO_ID, "--tag", "test_in1k", "--out", str(out), "--dry-run",
                 "--registry-dir", str(registry),
                 "--metric", "imagenet-1k:val:top1:12.5:random weights, a test"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "would upload to guidezoo/resnet18_dropfix.test_in1k" in printed
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json",
                                                      "model.safetensors"]  # fmt: skip
    assert f"sha256(model.safetensors) = {sha256_of(out / 'model.safetensors')}" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet18_dropfix"
    card = (out / "README.md").read_text()
    assert "| `test_in1k` | trained" in card
    assert "| imagenet-1k | val | top1 | 12.5 | random weights, a test |" in card
    assert (registry / "resnet18_dropfix.json").read_text() == before
    again = ["publish", str(trained_checkpoint[0]), "--variant", "resnet18_dropfix",
             "--repo-id", REPO_ID, "--tag", "test_in1k", "--out", str(out),
             "--dry-run"]  # fmt: skip
    with pytest.raises(SystemExit, match="not empty"):
        main(again)


LOAD_BOTH = textwrap.dedent(
    """
    import json, sys, timm, torch
    import zoo
    from safetensors.torch import load_file
    source = load_file(sys.argv[1])
    out = {}
    for name in ("resnet18_dropfix.test_in1k", "hf-hub:" + sys.argv[2]):
        model = timm.create_model(name, pretrained=True).eval()
        state = model.state_dict()
        torch.manual_seed(0)
        with torch.no_grad():
            logits = model(torch.randn(1, 3, 224, 224)).flatten()[:8]
        out[name] = {"bitwise": all(torch.equal(state[k], v) for k, v in source.items())
                     and set(state) == set(source), "logits": logits.tolist()}
    print(json.dumps(out))
    """
)


def test_publish_then_load_back_through_timm(trained_checkpoint, own_registry, hub_cache,
                                              tmp_path, recording_hf_api):  # fmt: skip
    registry, cards = own_registry
    checkpoint, logits = trained_checkpoint
    plan = prepare_repo_folder(checkpoint, "resnet18_dropfix", REPO_ID, "test_in1k",
                               tmp_path / "folder")  # fmt: skip
    api = recording_hf_api()
    revision = publish(plan, api=api, registry_dir=registry, cards_dir=cards)
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    upload = api.calls[1][1]
    assert upload["files"] == ["README.md", "config.json", "model.safetensors"]
    assert upload["commit_message"] == "guidezoo: resnet18_dropfix.test_in1k"
    recorded = load_registry(registry).variant("resnet18_dropfix").weights[-1]
    assert (recorded.kind, recorded.hub_id, recorded.revision, recorded.sha256) == (
        "trained", REPO_ID, revision, plan.sha256
    )  # fmt: skip
    assert stale_cards(cards, load_registry(registry)) == []
    assert f"`{plan.sha256}`" in (cards / "resnet18_dropfix.md").read_text()

    # the uploaded folder, as huggingface_hub would cache it at that revision
    snapshot = hub_cache.add(REPO_ID, {p.name: p for p in plan.files}, revision=revision)
    env = {**os.environ, **hub_cache.env, REGISTRY_ENV: str(registry)}
    result = subprocess.run([sys.executable, "-c", LOAD_BOTH, str(checkpoint), REPO_ID],
                            capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for name, report in loaded.items():
        assert report["bitwise"], name
        assert torch.equal(torch.tensor(report["logits"]), logits), name

    # a corrupted download fails the sha256 check and is left where it was
    weights = snapshot / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = subprocess.run([sys.executable, "-c", LOAD_BOTH, str(checkpoint), REPO_ID],
                            capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "ChecksumMismatchError" in result.stderr
    assert f"the registry records {plan.sha256}" in result.stderr
    assert weights.read_bytes() == bytes(data)  # nothing deleted


def test_publish_refuses_to_replace_different_weights(trained_checkpoint, own_registry,
                                                      tmp_path, recording_hf_api):  # fmt: skip
    registry, cards = own_registry
    plan = prepare_repo_folder(trained_checkpoint[0], "resnet18_dropfix", REPO_ID, "test_in1k",
                               tmp_path / "folder")  # fmt: skip
    before = (registry / "resnet18_dropfix.json").read_text()
    api = recording_hf_api(remote_sha256="f" * 64)
    with pytest.raises(PublishError, match=r"already has a different model\.safetensors"):
        publish(plan, api=api, registry_dir=registry, cards_dir=cards)
    assert "upload_folder" not in [c[0] for c in api.calls]
    assert (registry / "resnet18_dropfix.json").read_text() == before
    # the same weights again are no conflict; --force replaces different ones
    publish(plan, api=recording_hf_api(remote_sha256=plan.sha256), registry_dir=registry,
            cards_dir=cards)  # fmt: skip
    forced = recording_hf_api(remote_sha256="f" * 64)
    publish(plan, api=forced, force=True, registry_dir=registry, cards_dir=cards)
    assert "upload_folder" in [c[0] for c in forced.calls]

    # a registry tag that records other weights is not replaced either
    other = tmp_path / "other.safetensors"
    torch.manual_seed(2)
    save_file(timm.create_model("resnet18_dropfix").state_dict(), other)
    plan2 = prepare_repo_folder(other, "resnet18_dropfix", REPO_ID, "test_in1k",
                                tmp_path / "folder2")  # fmt: skip
    api = recording_hf_api()
    with pytest.raises(PublishError, match="already records other weights"):
        publish(plan2, api=api, registry_dir=registry, cards_dir=cards)
    assert api.calls == []


class TrainingState:
    """An arbitrary object in a checkpoint (as mmengine's message hub is): needs unpickling."""


def test_checkpoints_load_without_unpickling(trained_checkpoint, tmp_path):
    state = load_checkpoint_state(trained_checkpoint[0])
    weights_only = tmp_path / "plain.pth"
    torch.save({"state_dict": state, "meta": {"iter": 4}}, weights_only)
    assert set(load_checkpoint_state(weights_only)) == set(state)

    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": state, "message_hub": TrainingState()}, pickled)
    with pytest.raises(UnsafeWeightsError, match="weights_only=True"):
        load_checkpoint_state(pickled)
    with pytest.raises(PublishError, match="not unpickled"):  # publish says the same
        prepare_repo_folder(pickled, "resnet18_dropfix", REPO_ID, "t", tmp_path / "f0")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(PublishError, match="does not fit resnet18_dropfix"):
        prepare_repo_folder(wrong, "resnet18_dropfix", REPO_ID, "t", tmp_path / "f")
