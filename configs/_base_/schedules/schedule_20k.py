# mmseg 1.2.2's configs/_base_/schedules/schedule_20k.py, Python style: SGD lr 0.01 (momentum 0.9, weight decay
# 5e-4), poly decay (power 0.9) to 1e-4 over 20k iterations, validation and a checkpoint every 2k iterations.
from mmengine.hooks import CheckpointHook
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import SGD

optimizer = dict(type=SGD, lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type=OptimWrapper, optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type=PolyLR, eta_min=1e-4, power=0.9, begin=0, end=20000, by_epoch=False),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=20000, val_interval=2000)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
# merged into default_runtime's default_hooks by the child (default_hooks.update(checkpoint=checkpoint_hook))
checkpoint_hook = dict(type=CheckpointHook, by_epoch=False, interval=2000, max_keep_ckpts=3, save_last=True)
