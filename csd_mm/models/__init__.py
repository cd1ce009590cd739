from . import backbones, classifiers, heads, losses  # noqa: F401

__all__ = []
