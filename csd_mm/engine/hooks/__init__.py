from .cam_generation_hook import CAMGenerationHook
from .segmentation_export_hook import SegPredictionExportHook

__all__ = ['CAMGenerationHook', 'SegPredictionExportHook']
