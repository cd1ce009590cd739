from .cam_generation_hook import CAMGenerationHook
from .finite_loss_hook import FiniteLossHook
from .num_classes_check_hook import NumClassesCheckHook
from .segmentation_export_hook import SegPredictionExportHook

__all__ = ['CAMGenerationHook', 'FiniteLossHook', 'NumClassesCheckHook', 'SegPredictionExportHook']
