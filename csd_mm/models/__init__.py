from . import backbones, cam, classifiers, data_preprocessors, heads, losses  # noqa: F401
from .backbones import MCTformerViT
from .classifiers import BaseCAMClassifier, CAMClassifier, MCTformerV2Classifier
from .data_preprocessors import MultiViewDataPreprocessor
from .heads import CAMHead
from .losses import (CSDConsistencyLoss, add_background_channel, background_consistency, downsample_mask,
                     foreground_consistency, masked_kl)

__all__ = [
    'MCTformerViT', 'BaseCAMClassifier', 'CAMClassifier', 'MCTformerV2Classifier', 'MultiViewDataPreprocessor',
    'CAMHead', 'CSDConsistencyLoss', 'add_background_channel', 'background_consistency', 'downsample_mask',
    'foreground_consistency', 'masked_kl'
]
