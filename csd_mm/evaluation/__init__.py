from . import functional, metrics  # noqa: F401
from .metrics import SeedMetric

__all__ = ['SeedMetric']
