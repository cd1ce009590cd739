"""csd_mm: Cross-domain Semantic Decoupling (Yang et al., BMVC 2023) as an OpenMMLab 2.0 extension.

Importing this package adapts the known third-party breakages (:mod:`csd_mm.compat`) and registers every
part (datasets, transforms, models, metrics, hooks) in mmseg's registries, so Python-style configs can
use the classes directly and string ``type`` names resolve under the ``mmseg`` scope; the refiners of stage 2
(plain callables, not modules) are registered in csd_mm's own :data:`csd_mm.registry.REFINERS`.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, models, refine, utils  # noqa: E402,F401  (registers the parts)
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models', 'utils']
