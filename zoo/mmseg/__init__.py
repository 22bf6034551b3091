"""Everything of guidezoo that touches mmseg / mmengine registries.

Imported only explicitly or by a config's
``custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)``; ``import zoo``
never loads it. Importing it registers, in mmseg's registries (scope ``mmseg``):

- ``ResolutionAwareASPPHead`` (paper B): ``dilations='auto'`` from ``crop_size`` and
  ``output_stride``;
- ``StableSiLogLoss`` and ``StableDepthHead`` (paper A): the NaN-safe SILog loss and a depth
  head whose log-depth is ``logsigmoid(x) + log(max_depth)``;
- ``GammaDecayOptimWrapperConstructor`` (paper F): the gamma weight-decay policy;
- ``NonFiniteLossHook``: stops training at the first non-finite loss or gradient, with a report;
- ``SafetensorsCheckpointHook``: the final weights as ``.safetensors`` (``tools/train.py``).

and lets ``load_from`` / ``init_cfg`` read ``.safetensors`` paths and ``hf-hub:ORG/NAME``
(``zoo.mmseg.checkpoint``), never unpickling.

It also registers the zoo's timm variants with timm, so ``mmseg.TIMMBackbone`` can build them.
"""

import zoo.mmseg.checkpoint
import zoo.models  # noqa: F401  (timm variants, for mmseg.TIMMBackbone)
from zoo.mmseg.aspp import ResolutionAwareASPPHead
from zoo.mmseg.depth import StableDepthHead, StableSiLogLoss
from zoo.mmseg.hooks import NonFiniteLossError, NonFiniteLossHook, SafetensorsCheckpointHook
from zoo.mmseg.optim import GammaDecayOptimWrapperConstructor

__all__ = [
    "GammaDecayOptimWrapperConstructor",
    "NonFiniteLossError",
    "NonFiniteLossHook",
    "ResolutionAwareASPPHead",
    "SafetensorsCheckpointHook",
    "StableDepthHead",
    "StableSiLogLoss",
]
