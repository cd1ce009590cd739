from .cam_classifier import CAMClassifier
from .mctformer_classifier import MCTformerV2Classifier

__all__ = ['CAMClassifier', 'MCTformerV2Classifier']
