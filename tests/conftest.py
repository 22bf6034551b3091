import json
import shutil
from pathlib import Path

import pytest

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


@pytest.fixture
def hub_cache(tmp_path):
    root = tmp_path / "hf-cache"
    root.mkdir()
    return HubCache(root)
