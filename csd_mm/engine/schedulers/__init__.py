from .timm_cosine_functional import deit_epoch_lr, timm_cosine_lr
from .timm_cosine_scheduler import TimmCosineLR

__all__ = ['TimmCosineLR', 'deit_epoch_lr', 'timm_cosine_lr']
