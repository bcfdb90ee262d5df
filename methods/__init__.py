"""Prompt-tuning methods, one module each, registered by name (see ``methods.registry``)."""

from methods.base import BackboneDims, EmbeddingSource, Method, MethodConfig, ParamCounts, ParamGroup
from methods.registry import build_config, get_method_class, list_methods, register_method

__all__ = [
    "BackboneDims",
    "EmbeddingSource",
    "Method",
    "MethodConfig",
    "ParamCounts",
    "ParamGroup",
    "build_config",
    "get_method_class",
    "list_methods",
    "register_method",
]
