from .copy_paste import CopyPaste
from .copy_paste_functional import paste, soften_mask
from .decode_prior_mask import DecodePriorMask
from .mask_aware_functional import nearest_resize
from .mask_aware_mixin import MaskAwareMixin
from .mask_aware_rand_augment import MaskAwareRandAugment
from .mask_aware_random_resized_crop import MaskAwareRandomResizedCrop
from .mask_aware_rotate import MaskAwareRotate
from .mask_aware_shear import MaskAwareShear
from .mask_aware_translate import MaskAwareTranslate
from .pack_cam_inputs import PackCAMInputs
from .pack_csd_inputs import PackCSDInputs
from .random_crop_or_pad import RandomCropOrPad
from .random_crop_or_pad_functional import crop_or_pad, shift_range

__all__ = ['PackCAMInputs', 'PackCSDInputs', 'CopyPaste', 'paste', 'soften_mask', 'DecodePriorMask',
           'RandomCropOrPad', 'crop_or_pad', 'shift_range', 'MaskAwareRandomResizedCrop', 'MaskAwareRandAugment',
           'MaskAwareRotate', 'MaskAwareShear', 'MaskAwareTranslate', 'MaskAwareMixin', 'nearest_resize']
