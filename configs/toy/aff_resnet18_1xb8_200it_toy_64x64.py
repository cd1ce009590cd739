# PSA affinity network (Ahn & Kwak, CVPR 2018) on the toy dataset, CPU-sized: a narrow ResNet-18 from random
# init, trained on the confident labels (two CRFs, alphas 4 / 32) built from the CAMs of the toy CAM baseline.
# Same structure as configs/psa_affinity/aff_resnet50_1xb8_5e_voc12_448.py, scaled down.
#
#   python tools/train.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py          # writes .../cams
#   python tools/train.py configs/toy/aff_resnet18_1xb8_200it_toy_64x64.py \
#       --cfg-options train_dataloader.dataset.cam_dir=work_dirs/cam_resnet18_1xb16_300it_toy_64x64/cams
#   python tools/make_pseudo_masks.py CAMS data/toy_voc/JPEGImages OUT --refiner <config defining refiner>
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.config import read_base
from mmpretrain.models import ResNet
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs, RandomCrop

with read_base():
    from .._base_.datasets.toy_voc_affinity_labels import *  # noqa: F401,F403
    from .._base_.schedules.schedule_toy_sgd_poly_200it import *  # noqa: F401,F403
    from .._base_.toy_runtime import *  # noqa: F401,F403

from csd_mm.refine import AffinityNet, AffinityRandomWalkRefiner

crop_size = (64, 64)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PackSegInputs),
]
# the toy confident-label loader (toy_voc_affinity_labels.py: batch 8, drop_last as PSA's loader) with PSA's labels
train_dataloader.dataset.update(
    low_alpha=4,
    high_alpha=32,
    # the CRF kernel of the toy's PSA labels before PSA's 80 became dense_crf's default (kept so that they
    # stay as they were; either spans the whole 64x64 image)
    crf_cfg=dict(bi_xy_std=50),
    pipeline=train_pipeline)

# stages 2-4 of the narrow ResNet-18 all at 1/8 (stem /4, stage strides 1, 2, 1, 1): 8x8 embedding on 64x64
model = dict(
    type=AffinityNet,
    backbone=dict(type=ResNet, depth=18, stem_channels=16, base_channels=16, strides=(1, 2, 1, 1),
                  out_indices=(1, 2, 3), frozen_stages=-1, norm_eval=False),
    in_channels=(32, 64, 128),
    mid_channels=(16, 32, 64),
    embed_channels=112,
    radius=5)

# For tools/make_pseudo_masks.py --refiner <this file> (built with csd_mm.registry.REFINERS; point checkpoint at
# the trained weights).
refiner = dict(type=AffinityRandomWalkRefiner, model=model,
               checkpoint='work_dirs/aff_resnet18_1xb8_200it_toy_64x64/iter_200.pth',
               beta=8, logt=8, alpha=16)
