"""Small module-tree helpers shared by the guidelines and the analysis tools."""

from __future__ import annotations

from torch import nn


def replace_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``model.get_submodule(name)`` is (``name`` dotted, as named_modules)."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
