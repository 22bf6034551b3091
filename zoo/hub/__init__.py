"""Registry loading; later also publishing, verified download and model cards."""

from zoo.hub.registry import (
    FAMILIES,
    WEIGHT_KINDS,
    Metric,
    Paper,
    Registry,
    RegistryError,
    Variant,
    WeightSource,
    load_registry,
)

__all__ = [
    "FAMILIES",
    "WEIGHT_KINDS",
    "Metric",
    "Paper",
    "Registry",
    "RegistryError",
    "Variant",
    "WeightSource",
    "load_registry",
]
