import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi

REPO = Path(__file__).resolve().parents[1]


def example_variant(**overrides):
    """A schema-valid variant entry; tests change one field at a time."""
    entry = {
        "name": "resnet50_kp",
        "paper": "H",
        "family": "timm",
        "base_architecture": "resnet50",
        "summary": "ResNet-50 with even kernels on its stride-2 convolutions and pool.",
        "weights": [
            {
                "tag": "a1_in1k",
                "kind": "exact",
                "source": "timm/resnet50.a1_in1k",
                "license": "apache-2.0",
                "metrics": [
                    {
                        "dataset": "imagenet-1k",
                        "split": "val",
                        "name": "top1",
                        "value": 80.1,
                        "recipe": "timm a1",
                    }
                ],
            },
            {
                "tag": "ft_in1k",
                "kind": "trained",
                "hub_id": "guidezoo/resnet50_kp.ft_in1k",
                "revision": "0123456789abcdef0123456789abcdef01234567",
                "sha256": "a" * 64,
                "license": "apache-2.0",
            },
        ],
    }
    entry.update(overrides)
    return entry


@pytest.fixture
def make_variant():
    return example_variant


@pytest.fixture
def registry_dir(tmp_path):
    """A registry folder with the shipped papers file and one example variant."""
    directory = tmp_path / "registry"
    directory.mkdir()
    shutil.copy(REPO / "registry" / "papers.json", directory / "papers.json")
    (directory / "resnet50_kp.json").write_text(json.dumps(example_variant(), indent=2))
    return directory


_LOAD_PRETRAINED_SCRIPT = """
import json, sys, warnings
import timm, torch
import zoo
from safetensors.torch import load_file
from zoo.models._pretrained import InitOnlyWeightsWarning

name, source_file, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = timm.create_model(name, pretrained=True, **kwargs)
source = load_file(source_file)
state = model.state_dict()
shared = [k for k in source if k in state]
same = all(torch.equal(state[k], source[k]) for k in shared if state[k].shape == source[k].shape)
# kernels the model enlarged: the source sits top-left, the added row/column is zero
enlarged = sorted(k for k in shared if state[k].shape != source[k].shape)
zero_padded = all(
    torch.equal(state[k][..., : source[k].shape[-2], : source[k].shape[-1]], source[k])
    and not state[k][..., source[k].shape[-2] :, :].any()
    and not state[k][..., :, source[k].shape[-1] :].any()
    for k in enlarged
)
new = sorted(set(state) - set(source))
dropped = sorted(set(source) - set(state))
with torch.no_grad():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    logits = model.eval()(x)
print(json.dumps({
    "same": same, "new": new, "dropped": dropped, "enlarged": enlarged,
    "zero_padded": bool(zero_padded),
    "finite": bool(torch.isfinite(logits).all()), "logits": logits.flatten()[:8].tolist(),
    "init_warnings": [str(w.message) for w in caught if w.category is InitOnlyWeightsWarning],
    "new_values": {k: state[k].flatten()[:2].tolist() for k in new},
}))
"""


class HubCache:
    """A Hugging Face cache folder laid out as huggingface_hub writes it, filled locally.

    ``env`` points huggingface_hub at it with ``HF_HUB_OFFLINE=1``, so the real download code
    path (timm -> hf_hub_download) resolves files from here and never from the network.
    """

    def __init__(self, root: Path):
        self.root = root
        self.env = {
            "HF_HUB_CACHE": str(root),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }

    def add(self, repo_id: str, files: dict, revision: str = "0" * 40) -> Path:
        """Store ``files`` ({name: bytes or source path}) as the ``main`` revision of a repo."""
        repo = self.root / ("models--" + repo_id.replace("/", "--"))
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = snapshot / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copy(content, target)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        return snapshot

    def load_pretrained(self, name: str, source_file: Path, **kwargs) -> dict:
        """``timm.create_model(name, pretrained=True, **kwargs)`` in a fresh offline process.

        Reports whether every weight of ``source_file`` loaded unchanged, which parameters are
        new or dropped (and the first values of the new ones), the zoo's init-only warnings,
        and the first logits for one seeded input.
        """
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _LOAD_PRETRAINED_SCRIPT,
                name,
                str(source_file),
                json.dumps(kwargs),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **self.env},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def hub_cache(tmp_path):
    root = tmp_path / "hf-cache"
    root.mkdir()
    return HubCache(root)


@pytest.fixture(scope="session")
def timm_checkpoint(tmp_path_factory):
    """``make(name)`` -> (safetensors path, first logits for the seeded 224x224 input) of a
    randomly initialised timm model: a local stand-in for that architecture's Hub checkpoint."""
    import timm
    import torch
    from safetensors.torch import save_file

    made = {}

    def make(name: str):
        if name not in made:
            torch.manual_seed(0)
            model = timm.create_model(name).eval()
            path = tmp_path_factory.mktemp(name) / "model.safetensors"
            save_file(model.state_dict(), path)
            with torch.no_grad():
                torch.manual_seed(0)
                logits = model(torch.randn(1, 3, 224, 224)).flatten()[:8]
            made[name] = (path, logits)
        return made[name]

    return make


class RecordingHfApi(HfApi):
    """The real HfApi class with its network calls replaced by a record of them."""

    def __init__(self, remote_sha256: str | None = None):
        super().__init__(token=False)
        self.remote_sha256 = remote_sha256
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def file_exists(self, repo_id, filename, **kwargs):
        return self.remote_sha256 is not None

    def get_paths_info(self, repo_id, paths, **kwargs):
        from types import SimpleNamespace

        return [SimpleNamespace(path=paths[0], lfs=SimpleNamespace(sha256=self.remote_sha256))]

    def upload_folder(self, *, repo_id, folder_path, commit_message, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        self.calls.append(("upload_folder", {"repo_id": repo_id, "files": files,
                                             "commit_message": commit_message}))  # fmt: skip
        from types import SimpleNamespace

        return SimpleNamespace(oid="c0ffee" + "0" * 34)


@pytest.fixture
def recording_hf_api():
    """The class: ``recording_hf_api(remote_sha256=None)`` -> a recording HfApi."""
    return RecordingHfApi


@pytest.fixture
def own_registry(tmp_path):
    """A copy of the shipped registry and cards that publishing may write to."""
    registry = tmp_path / "registry"
    shutil.copytree(REPO / "registry", registry, ignore=shutil.ignore_patterns("*.py", "__*"))
    cards = tmp_path / "cards"
    shutil.copytree(REPO / "model_cards", cards)
    return registry, cards
