"""Train an mmseg model from a config (OpenMMLab's tools/train.py convention).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch

Besides mmengine's usual ``.pth`` checkpoints, the final weights are written as
``<work_dir>/iter_<N>.safetensors`` (``SafetensorsCheckpointHook``), which ``tools/test.py``
and ``zoo publish`` load without unpickling anything.
"""

from zoo.mmseg.tools import train_main

if __name__ == "__main__":
    train_main()
