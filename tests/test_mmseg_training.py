"""Real training through tools/train.py and evaluation through tools/test.py on generated
tiny datasets in mmseg's folder layouts, single process and under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.configs import config_path

pytestmark = pytest.mark.mmseg
pytest.importorskip("mmseg")

REPO = Path(__file__).resolve().parents[1]
STARE = "unet/unet-s5-d16_deeplabv3-resaware_4xb4-40k_stare-128x128"
NYU = "depth/depthestimator-stable-silog_r50-d8_4xb8-25k_nyu-480x480"
HEIGHT, WIDTH = 96, 112  # divisible by the U-Net's 16


def vessel_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark fundus-like image with a few bright lines, and their 0/1 mask."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for _ in range(4):
        row = rng.integers(5, HEIGHT - 5)
        mask[row : row + 2, :] = 1
        col = rng.integers(5, WIDTH - 5)
        mask[:, col : col + 2] = 1
    image = rng.integers(0, 60, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    image[mask == 1] = rng.integers(150, 255, (int(mask.sum()), 3))
    return image, mask


@pytest.fixture(scope="module")
def stare_root(tmp_path_factory) -> Path:
    """mmseg's STARE layout: images/{training,validation}/*.png, annotations/*/*.ah.png."""
    root = tmp_path_factory.mktemp("STARE")
    rng = np.random.default_rng(0)
    for split, count in (("training", 4), ("validation", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(count):
            image, mask = vessel_image(rng)
            Image.fromarray(image).save(root / "images" / split / f"im{i:04d}.png")
            Image.fromarray(mask).save(root / "annotations" / split / f"im{i:04d}.ah.png")
    return root


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory) -> Path:
    """mmseg's NYU layout: images/{train,test}/<scene>_<n>.jpg and annotations/*/<same>.png
    (uint16 millimetres)."""
    root = tmp_path_factory.mktemp("nyu")
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    for split, count in (("train", 4), ("test", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(count):
            depth_m = 1.0 + 6.0 * (ys / HEIGHT) + rng.uniform(0, 0.5)  # a floor receding
            depth_m[: HEIGHT // 6] = 0  # no reading at the top rows: invalid pixels
            shade = (255 * (1 - depth_m / 8)).clip(0, 255).astype(np.uint8)
            image = np.stack([shade, shade // 2 + xs.astype(np.uint8) % 40, shade // 3], -1)
            name = f"kitchen_{i:04d}"
            Image.fromarray(image.astype(np.uint8)).save(root / "images" / split / f"{name}.jpg")
            Image.fromarray((depth_m * 1000).astype(np.uint16)).save(
                root / "annotations" / split / f"{name}.png"
            )
    return root


def tiny_overrides(data_root: Path, train_pipeline: str, test_pipeline: str) -> str:
    """What every tiny run changes: data, loaders without workers, 4 iterations, CPU norms."""
    return f"""
data_root = {str(data_root)!r}
norm_cfg = dict(type='BN', requires_grad=True)
train_pipeline = {train_pipeline}
test_pipeline = {test_pipeline}
loader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(
    **loader, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
"""


def write_stare_config(folder: Path, data_root: Path) -> Path:
    """A user's config outside the repo, inheriting the zoo's STARE config by path."""
    config = folder / "tiny_stare.py"
    config.write_text(
        f"_base_ = [{str(config_path(STARE))!r}]\n"
        + tiny_overrides(
            data_root,
            "[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), "
            "dict(type='RandomCrop', crop_size=(64, 64)), dict(type='RandomFlip', prob=0.5), "
            "dict(type='PackSegInputs')]",
            "[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), "
            "dict(type='PackSegInputs')]",
        )
        + """
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg, base_channels=16),
    decode_head=dict(norm_cfg=norm_cfg, in_channels=16, channels=8, crop_size=crop_size),
    auxiliary_head=dict(norm_cfg=norm_cfg, in_channels=32, channels=8),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(
    batch_size=2, **loader,
    dataset=dict(times=1, dataset=dict(data_root=data_root, pipeline=train_pipeline)))
"""
    )
    return config


def write_nyu_config(folder: Path, data_root: Path) -> Path:
    config = folder / "tiny_nyu.py"
    packed = (
        "dict(type='PackSegInputs', meta_keys=('img_path', 'depth_map_path', 'ori_shape', "
        "'img_shape', 'pad_shape', 'scale_factor', 'flip', 'flip_direction', 'category_id'))"
    )
    config.write_text(
        f"_base_ = [{str(config_path(NYU))!r}]\n"
        + tiny_overrides(
            data_root,
            "[dict(type='LoadImageFromFile'), "
            "dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3), "
            f"dict(type='RandomCrop', crop_size=(64, 64)), {packed}]",
            "[dict(type='LoadImageFromFile'), "
            f"dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3), {packed}]",
        )
        + """
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    pretrained=None,
    decode_head=dict(in_channels=512, channels=16, norm_cfg=norm_cfg))
train_dataloader = dict(
    batch_size=2, **loader, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_evaluator = dict(type='DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0, crop_type=None)
test_evaluator = val_evaluator
"""
    )
    return config


def run_tool(*args: str, cwd: Path, timeout: int = 600) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def logged_losses(work_dir: Path) -> list[dict]:
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def assert_trained(work_dir: Path, iterations: int = 4) -> None:
    rows = logged_losses(work_dir)
    assert [r["iter"] for r in rows] == list(range(1, iterations + 1))
    assert all(np.isfinite(r["loss"]) for r in rows), rows
    assert (work_dir / f"iter_{iterations}.pth").is_file()
    assert (work_dir / f"iter_{iterations}.safetensors").is_file()


def train_then_evaluate(config: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """tools/train.py for 4 iterations, then tools/test.py on its safetensors checkpoint:
    (work dir, training output, evaluation output)."""
    work_dir = tmp_path / "work"
    trained = run_tool(sys.executable, str(REPO / "tools/train.py"), str(config),
                       "--work-dir", str(work_dir), cwd=tmp_path)  # fmt: skip
    assert_trained(work_dir)
    evaluated = run_tool(
        sys.executable, str(REPO / "tools/test.py"), str(config),
        str(work_dir / "iter_4.safetensors"), "--work-dir", str(tmp_path / "eval"),
        cwd=tmp_path,
    )  # fmt: skip
    return work_dir, trained, evaluated


def test_stare_trains_and_evaluates_through_the_tools(stare_root, tmp_path):
    config = write_stare_config(tmp_path, stare_root)
    work_dir, trained, evaluated = train_then_evaluate(config, tmp_path)
    assert "ResolutionAwareASPPHead" in trained
    assert "mDice" in evaluated
    # an mmengine .pth needs unpickling: refused, not unpickled
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/test.py"), str(config), str(work_dir / "iter_4.pth"),
         "--work-dir", str(tmp_path / "eval2")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "weights_only=True" in result.stderr
    assert "not unpickled" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stare_trains_under_torchrun_with_gloo(stare_root, tmp_path):
    config = write_stare_config(tmp_path, stare_root)
    work_dir = tmp_path / "work"
    out = run_tool(
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}",
        str(REPO / "tools/train.py"), str(config), "--launcher", "pytorch",
        "--work-dir", str(work_dir),
        cwd=tmp_path,
    )  # fmt: skip
    assert "Distributed training: True" in out
    assert "GPU number: 2" in out  # mmengine's name for the world size, CPU processes here
    assert "device_ids=None" in out  # DDP's CPU mode
    assert_trained(work_dir)


def test_nyu_depth_trains_with_the_stable_loss_and_evaluates(nyu_root, tmp_path):
    config = write_nyu_config(tmp_path, nyu_root)
    _, trained, evaluated = train_then_evaluate(config, tmp_path)
    assert "loss_silog" in trained
    assert "GammaDecayOptimWrapperConstructor" in trained
    for metric in ("abs_rel", "rmse", "d1"):
        assert metric in evaluated
