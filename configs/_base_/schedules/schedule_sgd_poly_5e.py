# IRN's CAM schedule: SGD, poly lr 0.1 (x10 on the classifier head), weight decay 1e-4, 5 epochs.
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import EpochBasedTrainLoop, TestLoop
from torch.optim import SGD

optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=SGD, lr=0.1, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}),
)
param_scheduler = [
    dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=5, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=5, val_interval=1000)
val_cfg = None
test_cfg = dict(type=TestLoop)
