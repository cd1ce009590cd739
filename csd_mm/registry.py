"""csd_mm's own registry: the refiners of WSSS step 2 (CAMs of one image -> pseudo mask).

Every other part of csd_mm (datasets, transforms, models, metrics, hooks) is registered in mmseg's registries.
Refiners are plain callables ``(img, cam, keys) -> mask``, not ``nn.Module`` objects, so they do not belong in
``MODELS``; they live in :data:`REFINERS`, a root registry of scope ``csd_mm``. Configs give the class itself as
``type`` (``dict(type=DenseCRFRefiner, ...)``); registered names (``'DenseCRFRefiner'``, ``'csd_mm.SeedRefiner'``)
resolve too (the registry's ``locations`` import :mod:`csd_mm.refine.refiners` when a name is looked up).
"""
from mmengine.registry import Registry

__all__ = ['REFINERS']

#: Refiners: ``REFINERS.build(dict(type=SeedRefiner, bg_threshold=0.3))`` (see :mod:`csd_mm.refine.refiners`).
REFINERS = Registry('refiner', scope='csd_mm', locations=['csd_mm.refine.refiners'])
