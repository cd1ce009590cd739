# MCTformer's schedule: AdamW, lr 5e-4 * batch / 512 (batch 64 -> 6.25e-5), weight decay 0.05,
# 5 warm-up epochs then cosine, 60 epochs.
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import EpochBasedTrainLoop, TestLoop
from torch.optim import AdamW

optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=5e-4 * 64 / 512, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'cls_token': dict(decay_mult=0.0), 'pos_embed': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-3, begin=0, end=5, by_epoch=True, convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, T_max=55, eta_min=1e-5, begin=5, end=60, by_epoch=True,
         convert_to_iter_based=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=60, val_interval=1000)
val_cfg = None
test_cfg = dict(type=TestLoop)
