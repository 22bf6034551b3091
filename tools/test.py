"""Evaluate an mmseg model from a config and a checkpoint (OpenMMLab's tools/test.py).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
    torchrun --nproc_per_node=2 tools/test.py CONFIG CHECKPOINT --launcher pytorch

CHECKPOINT is a ``.safetensors`` state dict (as tools/train.py writes). A ``.pth`` is read
with ``torch.load(weights_only=True)`` only: an mmengine checkpoint that needs unpickling is
refused, never unpickled.
"""

from zoo.mmseg.tools import evaluate_main

if __name__ == "__main__":
    evaluate_main()
