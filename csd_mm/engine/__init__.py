from . import hooks  # noqa: F401
from . import runner  # noqa: F401
from . import schedulers  # noqa: F401

__all__ = []
