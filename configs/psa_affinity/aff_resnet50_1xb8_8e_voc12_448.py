# PSA affinity network (Ahn & Kwak, CVPR 2018), the refinement MCTformer (Xu et al., CVPR 2022) applies to its
# CAMs, on VOC 2012 train_aug. PSA (train_aff.py): ResNet-38 at output stride 8 with frozen batch norms, crop 448,
# batch 8 in all (one DataParallel process), 8 epochs, poly lr 0.1 with the new layers at 10x, weight decay 5e-4,
# and momentum 5e-4: PSA's PolyOptimizer passes its weight decay positionally as SGD's momentum (the same quirk
# as IRN's, configs/_base_/schedules/schedule_sgd_poly_5e.py). Confident labels from CRFs with alpha 4 / 32
# (MCTformer: 1 / 12). Here an mmpretrain ResNet-50 with dilated stages 3-4 (output stride 8) stands in for
# ResNet-38; PSA's bias groups (2x / 20x lr, no decay) have no counterpart: the head has no biases and the
# backbone's only biases are its frozen batch norms'.
# The batch is PSA's on one GPU (1xb8); on N GPUs it is N x 8, so keep one GPU or scale the lr.
# Pretrained weights are never downloaded: set model.backbone.init_cfg to a LOCAL ImageNet checkpoint.
#
#   python tools/train.py configs/psa_affinity/aff_resnet50_1xb8_8e_voc12_448.py \
#       --cfg-options train_dataloader.dataset.cam_dir=work_dirs/<cam run>/cams
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.models import ResNet
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs, PhotoMetricDistortion, RandomCrop
from torch.optim import SGD

with read_base():
    from .._base_.default_runtime import *

from csd_mm.refine import AffinityLabelDataset, AffinityNet, AffinityRandomWalkRefiner

data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    dict(type=RandomResize, scale=(512, 512), ratio_range=(0.9, 1.1), keep_ratio=True),  # PSA: side 448..768
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=PackSegInputs),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=AffinityLabelDataset,
        cam_dir='work_dirs/cams_voc12_train_aug',  # set to the CAM folder of the CAM network
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        low_alpha=4,
        high_alpha=32,
        pipeline=train_pipeline,
    ),
)

model = dict(
    type=AffinityNet,
    # PSA's batch norms are fixed (statistics and affine parameters): norm_eval + requires_grad=False
    backbone=dict(type=ResNet, depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(1, 2, 3),
                  frozen_stages=1, norm_eval=True, norm_cfg=dict(type='BN', requires_grad=False)),
    in_channels=(512, 1024, 2048),
    mid_channels=(64, 128, 256),
    embed_channels=448,
    radius=5)

max_epochs = 8
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=SGD, lr=0.1, momentum=5e-4, weight_decay=5e-4),  # momentum: PSA's, see the top
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
default_hooks.update(checkpoint=dict(type=CheckpointHook, by_epoch=True, interval=1, max_keep_ckpts=2,
                                     save_last=True))

# For tools/make_pseudo_masks.py --refiner <this file> (built with csd_mm.registry.REFINERS): PSA's inference
# (beta 8, logt 8, alpha 16).
refiner = dict(type=AffinityRandomWalkRefiner, model=model,
               checkpoint='work_dirs/aff_resnet50_1xb8_8e_voc12_448/epoch_8.pth', beta=8, logt=8, alpha=16)
