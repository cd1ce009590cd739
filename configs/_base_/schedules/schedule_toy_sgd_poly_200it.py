# The schedule of the toy refiner networks (configs/toy/aff_*, configs/toy/irn_*): 200 iterations of SGD (lr
# 0.05, momentum 0.9, the head at 10x) with poly decay (power 0.9) to 0, no validation or test loop.
from mmengine.optim import OptimWrapper, PolyLR
from torch.optim import SGD

from csd_mm.engine.runner import NoPauseIterBasedTrainLoop

max_iters = 200
# the sampler restarts every epoch without mmengine's 2-s pause (same batches; csd_mm.engine.runner)
train_cfg = dict(type=NoPauseIterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None
test_cfg = None
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=SGD, lr=0.05, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}))
param_scheduler = [dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)]
