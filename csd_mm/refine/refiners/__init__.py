"""Refiners (CAMs of one image -> pseudo mask), registered in :data:`csd_mm.registry.REFINERS`: the seeds
themselves, dense CRF, PSA affinity random walk, IRN boundary random walk."""
from .affinity_refiner import AffinityRandomWalkRefiner
from .boundary_refiner import IRNBoundaryRefiner
from .builder import RefinerType, build_refiner
from .dense_crf_refiner import DenseCRFRefiner
from .seed_refiner import SeedRefiner

__all__ = [
    'AffinityRandomWalkRefiner', 'IRNBoundaryRefiner', 'DenseCRFRefiner', 'SeedRefiner', 'RefinerType',
    'build_refiner'
]
