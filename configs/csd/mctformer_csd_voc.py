# CSD on MCTformer-V2 (Yang et al., BMVC 2023), PASCAL VOC 2012: the MCTformer baseline
# (configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py: same model, DeiT-S init, schedule, batch 64
# pairs in total, 224 crops) trained on target-domain images (|y| >= 2) paired with COR-drawn source images
# (|y| = 1), with the dual KL consistency on the patch-token score map (the 3x3 conv head's patch CAM before
# pooling, MCTformerV2Classifier.forward_maps). Classification losses (loss_cls on the class tokens, loss_patch
# on the pooled patch CAM) apply to the target view only.
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   bash tools/dist_train.sh configs/csd/mctformer_csd_voc.py 8 --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank \
#       model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
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
# Schedule: the baseline's (60 epochs, 5 warm-up, AdamW). An epoch here is one pass over the target images
# (4,333 of train_aug's 10,582), so the run has about 41% of the baseline's iterations, each with four views
# (target, source, fg-pasted, bg-pasted) per pair.
from mmengine.config import read_base

with read_base():
    from ..mctformer.mctformer_v2_deits_8xb8_60e_voc12aug_224 import *  # noqa: F401,F403
    from .._base_.models.csd_consistency import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations, PhotoMetricDistortion, RandomCrop

from csd_mm.datasets import CSDDataset, ImageLevelDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs
from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank'

# Target and source views are augmented independently (the baseline's augmentation, same crop size; colour
# jitter per image); the source's bank mask (1 fg / 0 bg / 255 unsure) is loaded as a segmentation map so every
# geometric transform keeps it aligned with its image.
target_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(448, 448), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
]
source_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomResize, scale=(448, 448), ratio_range=(0.5, 1.0), keep_ratio=True),
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
    batch_size=8,  # pairs per GPU, x 8 GPUs = 64 (the baseline's batch)
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
