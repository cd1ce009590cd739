"""Shared fixtures of the refine tests."""
import pytest
from mmpretrain.models import ResNet

import csd_mm  # noqa: F401
from csd_mm.refine.models import AffinityNet


def tiny_affinity_net_cfg(**kwargs) -> dict:
    """A narrow ResNet-18 AffinityNet whose stages 2-4 are all at 1/8 (stride pattern of PSA's ResNet-38)."""
    cfg = dict(type=AffinityNet,
               backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=8, strides=(1, 2, 1, 1),
                             out_indices=(1, 2, 3), norm_eval=False),
               in_channels=(16, 32, 64), mid_channels=(4, 8, 8), embed_channels=16, radius=3)
    cfg.update(kwargs)
    return cfg


@pytest.fixture
def tiny_aff_cfg():
    """Config factory of a tiny AffinityNet (call it, optionally with overrides)."""
    return tiny_affinity_net_cfg
