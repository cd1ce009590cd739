from .base_cam_classifier import BaseCAMClassifier
from .cam_classifier import CAMClassifier
from .mctformer_classifier import MCTformerV2Classifier

__all__ = ['BaseCAMClassifier', 'CAMClassifier', 'MCTformerV2Classifier']
