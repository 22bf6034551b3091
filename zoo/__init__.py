"""guidezoo: eight published training guidelines as a timm / mmsegmentation model zoo.

``import zoo`` registers the zoo's model variants with timm (timm has no plugin discovery, so
``timm.create_model('<variant>')`` and ``hf-hub:`` ids of zoo variants need this import first).
It stays light on purpose: torch and timm only, no mmseg or mmcv, no network. Everything that
touches mmseg lives in ``zoo.mmseg``, imported by configs through ``custom_imports``.
"""

__version__ = "0.1.0"

from zoo import models

__all__ = ["__version__", "models"]
