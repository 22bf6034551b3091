"""The logic of ``tools/train.py`` and ``tools/test.py`` (OpenMMLab's convention)."""

from __future__ import annotations

import argparse
import os
import os.path as osp
from collections.abc import Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from zoo.hub.download import UnsafeWeightsError, load_checkpoint_state


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", help="the folder for logs and checkpoints")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config settings, key=value pairs (e.g. train_cfg.max_iters=100)",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher (pytorch for torchrun)",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def _load_config(args: argparse.Namespace, default_work_dir: str) -> Config:
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join(default_work_dir, name)
    if args.launcher == "pytorch" and not torch.cuda.is_available():
        _init_cpu_process_group(cfg)
    return cfg


def _init_cpu_process_group(cfg: Config) -> None:
    """mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` unconditionally
    and wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, both of which fail without
    a GPU. On CPU, start the (gloo) process group here, which mmengine then uses as it is,
    and wrap with ``device_ids=None`` (DDP's CPU mode)."""
    import torch.distributed as dist

    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(
            type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False
        )
    if dist.is_initialized():
        return
    backend = cfg.get("env_cfg", {}).get("dist_cfg", {}).get("backend", "gloo")
    if backend == "nccl":  # mmseg's default_runtime; nccl needs GPUs
        backend = "gloo"
        cfg.env_cfg.dist_cfg.backend = "gloo"
    dist.init_process_group(backend=backend)


def train_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a segmentor or depth estimator")
    parser.add_argument("config", help="the config file")
    parser.add_argument("--resume", action="store_true", help="resume from the latest checkpoint")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    _common_arguments(parser)
    args = parser.parse_args(argv)

    cfg = _load_config(args, "work_dirs")
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    cfg.resume = args.resume
    hooks = list(cfg.get("custom_hooks", []))
    if not any(h.get("type") == "SafetensorsCheckpointHook" for h in hooks):
        hooks.append(dict(type="SafetensorsCheckpointHook"))
    cfg.custom_hooks = hooks
    Runner.from_cfg(cfg).train()


def evaluate_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a segmentor or depth estimator")
    parser.add_argument("config", help="the config file")
    parser.add_argument("checkpoint", help="a .safetensors state dict (or a weights-only .pth)")
    _common_arguments(parser)
    args = parser.parse_args(argv)

    cfg = _load_config(args, "work_dirs")
    cfg.load_from = None  # loaded below, without unpickling
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    try:
        state = load_checkpoint_state(args.checkpoint)
    except (UnsafeWeightsError, FileNotFoundError) as error:
        raise SystemExit(str(error)) from None
    model.load_state_dict(state, strict=True)
    runner.test()
