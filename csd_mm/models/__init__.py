from . import backbones, cam, classifiers, data_preprocessors, heads, losses  # noqa: F401

__all__ = []
