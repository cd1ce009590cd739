# MCTformer's schedule (Xu et al., CVPR 2022; main.py defaults on timm 0.4.12, DeiT's recipe):
# - AdamW, betas (0.9, 0.999), eps 1e-8, lr 5e-4 * total batch / 512 (run.sh: --batch-size 64 -> 6.25e-5),
#   weight decay 0.05 except on 1-D parameters (LayerNorms, biases), biases, cls_token and pos_embed (timm's
#   create_optimizer with the model's no_weight_decay()); no gradient clipping.
# - timm's CosineLRScheduler as create_scheduler builds it: linear warm-up from 1e-6 over 5 epochs, cosine to
#   1e-5 over t_initial = 60 epochs counted from epoch 0 (no warmup_prefix), stepped ONCE PER EPOCH with
#   step(epoch) after the epoch: epoch 0 and 1 train at 1e-6, epoch e >= 1 at the closed form at t = e - 1
#   (TimmCosineLR reproduces it exactly; MMEngine's LinearLR + CosineAnnealingLR cannot). --cooldown-epochs 10 has
#   no effect: main.py ignores the epoch count create_scheduler returns and trains --epochs 60.
# - 60 epochs.
from mmengine.optim import OptimWrapper
from mmengine.runner import EpochBasedTrainLoop, TestLoop
from torch.optim import AdamW

from csd_mm.engine.schedulers import TimmCosineLR

optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=5e-4 * 64 / 512, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    # timm: no decay where len(shape) == 1, name ends with '.bias' or name in {'cls_token', 'pos_embed'}
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'cls_token': dict(decay_mult=0.0), 'pos_embed': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type=TimmCosineLR, t_initial=60, lr_min=1e-5, warmup_t=5, warmup_lr_init=1e-6, by_epoch=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=60, val_interval=1000)
val_cfg = None
test_cfg = dict(type=TestLoop)
