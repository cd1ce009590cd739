from .csd_consistency_loss import CSDConsistencyLoss
from .masked_kl import (add_background_channel, background_consistency, downsample_mask,
                        foreground_consistency, masked_kl)

__all__ = ['CSDConsistencyLoss', 'add_background_channel', 'background_consistency', 'downsample_mask',
           'foreground_consistency', 'masked_kl']
