"""Model adapters: one module per family, resolved from the checkpoint's own config."""
from .base import ModelSpec, Prepared, UnsupportedModel, VLMAdapter
from .registry import ADAPTERS, describe, describe_adapter, detect_family, load, save_untrained_twin

__all__ = ["ADAPTERS", "ModelSpec", "Prepared", "UnsupportedModel", "VLMAdapter", "describe", "describe_adapter", "detect_family", "load", "save_untrained_twin"]
