# IRN's class-boundary network (Ahn, Cho & Kwak, CVPR 2019; semantic part only) on the toy dataset, CPU-sized:
# a narrow ResNet-18 from random init (trained with the branch: there are no ImageNet weights to freeze, unlike
# IRN), on IRN's confident labels built from the CAMs of the toy CAM baseline (IRN's thresholds 0.30 / 0.05 and
# its label CRF with IRN's kernels, see the VOC config; the bilateral sxy 50 is NOT scaled to the 64x64 images as
# in configs/toy/crf_toy_64x64.py: in one comparison on the seed-0 baseline CAMs of the toy pipeline, at one
# torch thread and with records not kept, the IRN masks were about 4 points of mask mIoU lower with sxy 8).
# Same structure as configs/irn/irn_resnet50_1xb32_3e_voc12aug_512.py, scaled to 64x64 images: IRN's boundary
# map is 1/4 of a ~500-pixel image (~125 positions a side); at 1/4 of 64 pixels (16 positions) the toy objects are 1-2
# positions thick and the walk only blurs them (measured: below the seeds). So the images are enlarged 4x
# (img_scale 4: the 1/4 map has one position per original pixel, 64 a side), training uses IRN's radius 10 and
# inference its radius 5. The walk is shorter (exp_times 4: 16 steps instead of 256), the background score is
# close to the best seed threshold of the toy CAMs (0.45; IRN: 0.25) and the CAMs are not multiplied by 1 - B
# before the walk (IRN does; on the toy it erases the thin objects): docs/method.md section 8 has the
# figures (IRN's own inference settings stay available: exp_times=8, bg_threshold=0.25,
# weight_by_boundary=True). About 2-5 minutes of CPU (set OMP_NUM_THREADS=1 on a shared machine).
#
#   python tools/train.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py          # writes .../cams
#   python tools/train.py configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py \
#       --cfg-options train_dataloader.dataset.cam_dir=work_dirs/cam_resnet18_1xb16_300it_toy_64x64/cams
#   python tools/make_pseudo_masks.py CAMS data/toy_voc/JPEGImages OUT \
#       --refiner configs/toy/irn_resnet18_1xb8_200it_toy_64x64.py \
#       --cfg-options refiner.checkpoint=work_dirs/irn_resnet18_1xb8_200it_toy_64x64/iter_200.pth
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.config import read_base
from mmpretrain.models import ResNet
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs, RandomCrop

with read_base():
    from .._base_.datasets.toy_voc_affinity_labels import *  # noqa: F401,F403
    from .._base_.schedules.schedule_toy_sgd_poly_200it import *  # noqa: F401,F403
    from .._base_.toy_runtime import *  # noqa: F401,F403

from csd_mm.refine import BoundaryNet, IRNBoundaryRefiner

img_scale = 4  # images enlarged 4x for the boundary network (training and inference)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    dict(type=RandomResize, scale=(64 * img_scale, 64 * img_scale), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomCrop, crop_size=(64 * img_scale, 64 * img_scale)),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PackSegInputs),
]
# the toy confident-label loader (toy_voc_affinity_labels.py: batch 8, drop_last as IRN's loader) with IRN's labels
train_dataloader.dataset.update(
    confident_labels='irn',
    conf_fg=0.30,
    conf_bg=0.05,
    # crf_cfg: the defaults of dense_crf_labels, IRN's label CRF (not scaled to the toy images, see above)
    pipeline=train_pipeline)

# IRN's levels: stem (after max pooling) and stages 1-4 at 1/4, 1/4, 1/8, 1/16, 1/16 (stage strides 1, 2, 2, 1)
# of the enlarged image: a 64x64 boundary map for a 64x64 toy image
model = dict(
    type=BoundaryNet,
    backbone=dict(type=ResNet, depth=18, stem_channels=16, base_channels=16, strides=(1, 2, 2, 1),
                  out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False),
    in_channels=(16, 16, 32, 64, 128),
    mid_channels=16,
    num_groups=4,
    with_stem=True,
    freeze_backbone=False,
    radius=10)  # IRN's training radius (on its 128x128 map of 512 crops; the toy map is 64x64)

# the toy refiners' schedule (schedule_toy_sgd_poly_200it.py) with IRN's weight decay
optim_wrapper.optimizer.update(weight_decay=1e-4)

# For tools/make_pseudo_masks.py --refiner <this file> (built with csd_mm.registry.REFINERS; point checkpoint at
# the trained weights).
refiner = dict(type=IRNBoundaryRefiner, model=model,
               checkpoint='work_dirs/irn_resnet18_1xb8_200it_toy_64x64/iter_200.pth',
               beta=10, exp_times=4, bg_threshold=0.45, radius=5, flip=True, weight_by_boundary=False,
               img_scale=img_scale)
