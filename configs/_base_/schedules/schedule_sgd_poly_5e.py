# IRN's CAM schedule (jiwoon-ahn/irn, step/train_cam.py + misc/torchutils.py + run_sample.py): SGD, lr 0.1 with
# 10x on the classifier head, weight decay 1e-4 on both groups, poly decay lr * (1 - step / max_step) ** 0.9,
# 5 epochs of batch 16 (drop_last, so max_step = (10582 // 16) * 5 = 3305 on train_aug).
#
# Momentum 1e-4, not 0.9: IRN's PolyOptimizer(params, lr, weight_decay, max_step, momentum=0.9) calls
# torch.optim.SGD.__init__(params, lr, weight_decay) positionally, and SGD's third positional argument is momentum.
# So IRN's effective momentum is cam_weight_decay = 1e-4 (the per-group 'weight_decay': 1e-4 is the real weight
# decay), and the PolyOptimizer argument named `momentum` (0.9) is only used as the poly power.
# mmengine's PolyLR reaches lr 0 on the last iteration ((1 - t / (T - 1)) ** 0.9), IRN stops just above it
# ((1 - t / T) ** 0.9); the two differ by at most 0.07% of the base lr (at the last step, T = 3305).
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import EpochBasedTrainLoop, TestLoop
from torch.optim import SGD

optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=SGD, lr=0.1, momentum=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}),
)
param_scheduler = [
    dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=5, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=5, val_interval=1000)
val_cfg = None
test_cfg = dict(type=TestLoop)
