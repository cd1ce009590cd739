# CSD on IRN's ResNet-50 CAM network (Yang et al., BMVC 2023), PASCAL VOC 2012: the IRN baseline
# (configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py: same model, ImageNet init, schedule, batch 16
# pairs, 512 crops) trained on target-domain images (|y| >= 2) paired with COR-drawn source images (|y| = 1),
# with the dual KL consistency on the 1x1 classifier's score map (before pooling). The classification loss
# applies to the target view only.
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   python tools/train.py configs/csd/resnet50_csd_voc.py --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/resnet50_cam_1xb16_5e_voc12aug_512/source_bank \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
#
# Paper ablations (Sec. 4 of the paper; CSD_SPEC section 5), as --cfg-options:
#   copy-paste + dual consistency without COR:  train_dataloader.dataset.sampling=uniform
#   COR diagonal 0 instead of single-label counts: train_dataloader.dataset.include_self=False
#   lambda_1 grid:  model.head.consistency_loss.lambda_fg=0      (and 0.001, 0.01, 0.1)
#   lambda_2 grid:  model.head.consistency_loss.lambda_bg=0      (and 0.001, 0.01, 0.1, 1.0)
#   saliency background term:  model.head.consistency_loss.bg_mode=saliency
#   paper's literal sum reduction:  model.head.consistency_loss.reduction=sum
#   random blending (soft mask edges):  "train_dataloader.dataset.paste_pipeline.0.soft_edge_sigma=3.0"
#   classification loss on the fg-pasted view too (label y_m OR y_s):  model.cls_on_pasted=True
#
# Schedule: the baseline's (5 epochs, poly). An epoch here is one pass over the target images (4,333 of
# train_aug's 10,582), so the run has about 41% of the baseline's iterations, each with four views (target,
# source, fg-pasted, bg-pasted) per pair. IRN's batch norms are frozen (norm_eval), so the batched forward of
# the four views equals four separate passes.
from mmengine.config import read_base

with read_base():
    from ..resnet50_cam.resnet50_cam_1xb16_5e_voc12aug_512 import *  # noqa: F401,F403
    from .._base_.models.csd_consistency import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations, PhotoMetricDistortion, RandomCrop

from csd_mm.datasets import CSDDataset, ImageLevelDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs
from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/resnet50_cam_1xb16_5e_voc12aug_512/source_bank'

# Target and source views: the baseline's augmentation (IRN: long side 320-640, flip, colour jitter, crop 512),
# each image on its own; the source's bank mask (1 fg / 0 bg / 255 unsure) is loaded as a segmentation map so
# every geometric transform keeps it aligned with its image.
target_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(640, 640), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
]
source_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomResize, scale=(640, 640), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
]
paste_pipeline = [
    dict(type=CopyPaste, soft_edge_sigma=0.0),  # aligned hard paste (CSD_SPEC section 4)
    dict(type=PackCSDInputs),
]
train_dataloader = dict(
    batch_size=16,  # pairs (the baseline's batch)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=CSDDataset,
        dataset=dict(
            type=ImageLevelDataset,
            data_root=data_root,
            ann_file='ImageSets/Segmentation/train_aug.txt',
            data_prefix=dict(img_path='JPEGImages'),
            label_source='npy',
            label_file=label_file,
            pipeline=[]),
        source_bank=source_bank,
        pipeline=target_pipeline,
        source_pipeline=source_pipeline,
        paste_pipeline=paste_pipeline,
        sampling='cor',  # 'uniform': copy-paste without resampling (ablation)
        include_self=True,
        seed=0),
)

model.update(
    head=dict(
        consistency_loss=csd_consistency_loss))

# After training: CAMs of every train_aug image (the seeds, then the pseudo masks); no source bank (stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
