# IRN's class-boundary network (Ahn, Cho & Kwak, CVPR 2019; semantic part: the boundary branch, no displacement
# field) on VOC 2012 train_aug, the refiner of the IRN pipeline that the ResNet baseline of CSD (Yang et al.,
# BMVC 2023) follows. IRN's settings: ResNet-50 with strides (2, 2, 2, 1) (mmpretrain: stem /4, stage strides
# 1, 2, 2, 1), frozen (features detached, batch norms in eval mode), edge branch on the stem and the four
# stages (32 channels each, GroupNorm(4, 32)); crop 512, random rescale 0.5-1.5, flip; pairs within radius 10
# on the 1/4 map; batch 32, 3 epochs, SGD lr 0.1 with poly decay (power 0.9), weight decay 1e-4 (IRN's
# PolyOptimizer passes its weight decay positionally as SGD's momentum, so its momentum is 1e-4, as here);
# drop_last as IRN's loader. Confident labels: IRN's step/cam_to_ir_label.py (AffinityLabelDataset with
# confident_labels='irn'): the CAMs thresholded with the background scores conf_fg_thres 0.30 / conf_bg_thres 0.05,
# each smoothed by IRN's label CRF (gt_prob 0.7, 10 iterations, Gaussian sxy 3 / compat 3, bilateral sxy 50 /
# srgb 5 / compat 10: the defaults of dense_crf_labels), reduced to the 1/4 map by its centre pixels as IRN's PIL
# nearest. They are cached in <cam_dir>_irn_conf_fg0.3_bg0.05.
#
# Pretrained weights are never downloaded: point model.pretrained at a LOCAL ImageNet ResNet-50 (a torchvision
# state dict loads as is). Without it the frozen backbone stays random, which is not IRN's setting.
#
#   python tools/train.py configs/irn/irn_resnet50_1xb32_3e_voc12aug_512.py --cfg-options \
#       model.pretrained=/path/to/resnet50.pth train_dataloader.dataset.cam_dir=work_dirs/<cam run>/cams
#   python tools/make_pseudo_masks.py work_dirs/<cam run>/cams data/VOCdevkit/VOC2012/JPEGImages OUT \
#       --refiner configs/irn/irn_resnet50_1xb32_3e_voc12aug_512.py \
#       --cfg-options refiner.checkpoint=work_dirs/irn_resnet50_1xb32_3e_voc12aug_512/epoch_3.pth
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.config import read_base
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.models import ResNet
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs, RandomCrop
from torch.optim import SGD

with read_base():
    from .._base_.datasets.voc12_affinity_labels import *  # noqa: F401,F403
    from .._base_.default_runtime import *

from csd_mm.refine import BoundaryNet, IRNBoundaryRefiner

crop_size = (512, 512)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    dict(type=RandomResize, scale=(500, 500), ratio_range=(0.5, 1.5), keep_ratio=True),  # IRN: x0.5 .. x1.5
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomCrop, crop_size=crop_size),  # smaller images are padded in the batch (labels with 255)
    dict(type=PackSegInputs),
]
# the confident-label loader of voc12_affinity_labels.py (train_aug, drop_last): IRN's batch and labels
train_dataloader.update(batch_size=32)  # IRN: 10582 // 32 = 330 iterations per epoch
train_dataloader.dataset.update(
    confident_labels='irn',
    conf_fg=0.30,
    conf_bg=0.05,
    crf_cfg=dict(gt_prob=0.7, n_iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=50, bi_rgb_std=5, bi_w=10),
    pipeline=train_pipeline)

model = dict(
    type=BoundaryNet,
    backbone=dict(type=ResNet, depth=50, strides=(1, 2, 2, 1), out_indices=(0, 1, 2, 3), frozen_stages=4,
                  norm_eval=True),
    in_channels=(64, 256, 512, 1024, 2048),
    mid_channels=32,
    num_groups=4,
    with_stem=True,
    freeze_backbone=True,
    radius=10,
    pretrained=None)  # a LOCAL ImageNet ResNet-50 checkpoint, see above
# (default data preprocessor: ImageNet mean / std, batches padded to a multiple of 16, labels padded with 255)

max_epochs = 3
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=SGD, lr=0.1, momentum=1e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
default_hooks.update(checkpoint=dict(type=CheckpointHook, by_epoch=True, interval=1, max_keep_ckpts=2,
                                     save_last=True))

# For tools/make_pseudo_masks.py --refiner <this file> (built with csd_mm.registry.REFINERS): IRN's inference
# (radius 5, beta 10, exp_times 8, sem_seg_bg_thres 0.25, flip-averaged boundary logits). Images are padded to a
# multiple of 16 (IRN: to 512).
refiner = dict(type=IRNBoundaryRefiner, model=model,
               checkpoint='work_dirs/irn_resnet50_1xb32_3e_voc12aug_512/epoch_3.pth',
               beta=10, exp_times=8, bg_threshold=0.25, radius=5, flip=True)
