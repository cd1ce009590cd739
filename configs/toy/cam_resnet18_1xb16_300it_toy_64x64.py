# Baseline CAM network on the embedded toy dataset, CPU-sized: a narrow ResNet-18 from random init.
# Same structure as configs/resnet50_cam (IRN-style CAM), scaled down; every stage trains (no ImageNet weights
# to keep frozen) and its batch norms learn their statistics. Output stride 8 (stage strides 1, 2, 1, 1 after
# the stride-4 stem) keeps an 8x8 score map on 64x64 images.
from mmengine.config import read_base
from mmengine.optim import PolyLR

with read_base():
    from .._base_.datasets.toy_voc import *
    from .._base_.toy_runtime import *
    from .._base_.models.resnet50_cam import *
    from .._base_.schedules.schedule_sgd_poly_5e import *

from csd_mm.engine.hooks import CAMGenerationHook
from csd_mm.engine.runner import NoPauseIterBasedTrainLoop

num_classes = 5
model.update(
    backbone=dict(
        type=ResNet,
        depth=18,
        stem_channels=16,
        base_channels=16,
        strides=(1, 2, 1, 1),
        out_indices=(3, ),
        frozen_stages=-1,
        norm_eval=False),
    head=dict(type=CAMHead, in_channels=128, num_classes=num_classes),
    test_cfg=dict(scales=(1.0, 0.5, 1.5), flip=True, output_stride=8))  # IRN's upsample-then-crop at stride 8

train_dataloader.update(batch_size=16)
max_iters = 300
# the sampler restarts every epoch without mmengine's 2-s pause (same batches; csd_mm.engine.runner)
train_cfg = dict(type=NoPauseIterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters + 1)
# Toy deviation from IRN: momentum 0.9 and lr 0.05 for a from-scratch net in 300 iterations. IRN's effective
# momentum is 1e-4 (its PolyOptimizer passes weight_decay into SGD's positional momentum slot; see
# configs/_base_/schedules/schedule_sgd_poly_5e.py), which the VOC config follows.
optim_wrapper.update(optimizer=dict(type=SGD, lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)]

# After training: CAMs of every training image (the seeds, later the pseudo masks) and CSD's source bank
# (stage 0) from the single-label ones.
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
