from . import functional, metrics  # noqa: F401

__all__ = []
