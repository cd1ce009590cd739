from .copy_paste import CopyPaste
from .copy_paste_functional import paste, soften_mask
from .pack_cam_inputs import PackCAMInputs
from .pack_csd_inputs import PackCSDInputs

__all__ = ['PackCAMInputs', 'PackCSDInputs', 'CopyPaste', 'paste', 'soften_mask']
