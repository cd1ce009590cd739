from .cam_generation_hook import CAMGenerationHook

__all__ = ['CAMGenerationHook']
