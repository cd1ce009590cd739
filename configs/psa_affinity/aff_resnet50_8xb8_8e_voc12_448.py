# PSA affinity network (Ahn & Kwak, CVPR 2018), the refinement MCTformer (Xu et al., CVPR 2022) applies to its
# CAMs, on VOC 2012 train_aug. PSA: ResNet-38 at output stride 8, crop 448, batch 8, 8 epochs, poly lr 0.1 with
# the new layers at 10x, weight decay 5e-4, confident labels from CRFs with alpha 4 / 32 (MCTformer: 1 / 12).
# Here an mmpretrain ResNet-50 with dilated stages 3-4 (output stride 8) stands in for ResNet-38.
# Pretrained weights are never downloaded: set model.backbone.init_cfg to a LOCAL ImageNet checkpoint.
#
#   python tools/train.py configs/psa_affinity/aff_resnet50_8xb8_8e_voc12_448.py \
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

data_root = 'data/voc12'
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
    backbone=dict(type=ResNet, depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(1, 2, 3),
                  frozen_stages=1, norm_eval=True),
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
    optimizer=dict(type=SGD, lr=0.1, momentum=0.9, weight_decay=5e-4),
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
               checkpoint='work_dirs/aff_resnet50_8xb8_8e_voc12_448/epoch_8.pth', beta=8, logt=8, alpha=16)
