# PSA affinity network (Ahn & Kwak, CVPR 2018) as MCTformer (Xu et al., CVPR 2022) trains and applies it to its
# CAMs, on VOC 2012 train_aug: the numbers of MCTformer's fork of PSA (psa/train_aff.py, psa/infer_aff.py,
# run_psa.sh). Training: ResNet-38 at output stride 8 with frozen batch norms, crop 448, batch 8 in all (one
# DataParallel process, drop_last), 5 epochs, poly lr 0.01 with the new layers at 10x, weight decay 5e-4, and
# momentum 5e-4: PSA's PolyOptimizer passes its weight decay positionally as SGD's momentum (the same quirk as
# IRN's, configs/_base_/schedules/schedule_sgd_poly_5e.py). Confident labels from CRFs with alphas 1 / 12
# (run_psa.sh trains on the `..._crf_1` / `..._crf_12` folders).
# Augmentation (train_aff.py, PSA's and MCTformer's alike): no rescale; torchvision's ColorJitter(brightness 0.3,
# contrast 0.3, saturation 0.3, hue 0.1) on the whole image; a random 448 crop, where a side is shorter the image
# sits at a random offset in a container filled with 0 before normalisation (black; label 255); horizontal flip.
# Inference (infer_aff.py): beta 8, logt 6 (2^6 steps), background score the constant --bg_thr 0.39, "the optimal
# one obtained for seeds": MCTformer's own best seed threshold. Set refiner.bg_threshold to the best threshold of
# the seed sweep of YOUR CAMs (tools/run_pipeline.py does).
# PSA's own numbers (jiwoon-ahn/psa), e.g. for the ResNet / IRN path, one line each:
#   train_aff.py: 8 epochs and lr 0.1 (max_epochs=8, optimizer.lr=0.1); the rest as above.
#   infer_cls.py: confident labels from CRFs with alphas 4 / 32 (low_alpha=4, high_alpha=32).
#   infer_aff.py: logt 8 and background (1 - max cam) ** 16 (refiner logt=8, bg_threshold=None, alpha=16).
# Here an mmpretrain ResNet-50 with dilated stages 3-4 (output stride 8) stands in for ResNet-38; PSA's bias
# groups (2x / 20x lr, no decay) have no counterpart: the head has no biases and the backbone's only biases are
# its frozen batch norms'.
# The batch is PSA's on one GPU (1xb8); on N GPUs it is N x 8, so keep one GPU or scale the lr.
# Pretrained weights are never downloaded: set model.backbone.init_cfg to a LOCAL ImageNet checkpoint.
#
#   python tools/train.py configs/psa_affinity/aff_resnet50_1xb8_5e_voc12_448.py \
#       --cfg-options train_dataloader.dataset.cam_dir=work_dirs/<cam run>/cams \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
from mmcv.transforms import LoadImageFromFile, RandomFlip
from mmengine.config import read_base
from mmengine.optim import OptimWrapper, PolyLR
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.datasets.transforms import ColorJitter
from mmpretrain.models import ResNet
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
from torch.optim import SGD

with read_base():
    from .._base_.datasets.voc12_affinity_labels import *  # noqa: F401,F403
    from .._base_.default_runtime import *

from csd_mm.datasets.transforms import RandomCropOrPad
from csd_mm.refine import AffinityNet, AffinityRandomWalkRefiner

crop_size = (448, 448)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    # torchvision's ColorJitter on PIL's RGB image: mmpretrain's 'pillow' backend turns the BGR image into RGB for
    # PIL's ImageEnhance / HSV and back (negative hue draws: csd_mm.compat); before the crop, as PSA (contrast
    # blends with the whole image's mean grey)
    dict(type=ColorJitter, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1, backend='pillow'),
    # PSA's imutils.RandomCrop: no rescale; a short side sits at a random offset in a 0-filled (black, since the
    # data preprocessor normalises afterwards as PSA does) container, its label 255
    dict(type=RandomCropOrPad, crop_size=crop_size, img_pad_val=0, seg_pad_val=255),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PackSegInputs),
]
# the confident-label loader of voc12_affinity_labels.py (train_aug, drop_last): PSA's batch and MCTformer's labels
train_dataloader.update(batch_size=8)  # PSA: 10582 // 8 = 1322 iterations per epoch
train_dataloader.dataset.update(
    low_alpha=1,  # MCTformer's run_psa.sh; PSA: 4 / 32
    high_alpha=12,
    pipeline=train_pipeline)

model = dict(
    type=AffinityNet,
    # PSA's batch norms are fixed (statistics and affine parameters): norm_eval + requires_grad=False
    backbone=dict(type=ResNet, depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(1, 2, 3),
                  frozen_stages=1, norm_eval=True, norm_cfg=dict(type='BN', requires_grad=False)),
    in_channels=(512, 1024, 2048),
    mid_channels=(64, 128, 256),
    embed_channels=448,
    radius=5)

max_epochs = 5  # MCTformer; PSA: 8
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
optim_wrapper = dict(
    type=OptimWrapper,
    # lr: MCTformer's (PSA: 0.1); momentum: PSA's quirk, see the top
    optimizer=dict(type=SGD, lr=0.01, momentum=5e-4, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type=PolyLR, power=0.9, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
default_hooks.update(checkpoint=dict(type=CheckpointHook, by_epoch=True, interval=1, max_keep_ckpts=2,
                                     save_last=True))

# For tools/make_pseudo_masks.py --refiner <this file> (built with csd_mm.registry.REFINERS): MCTformer's
# infer_aff.py, beta 8, logt 6, constant background 0.39 = MCTformer's best seed threshold of ITS CAMs: pass the
# seed sweep's best threshold of yours (--cfg-options refiner.bg_threshold=<t>). PSA: logt=8, bg_threshold=None,
# alpha=16 ((1 - max cam) ** 16).
refiner = dict(type=AffinityRandomWalkRefiner, model=model,
               checkpoint='work_dirs/aff_resnet50_1xb8_5e_voc12_448/epoch_5.pth', beta=8, logt=6, bg_threshold=0.39)
