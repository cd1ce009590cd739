# CSD on the toy dataset: the toy baseline (same model, init, schedule and budget) trained on target-domain
# images paired with COR-drawn source images, with the dual KL consistency (Yang et al., BMVC 2023).
# Needs the baseline's source bank (stage 0): set `source_bank` (tools/run_pipeline.py does), e.g.
#   python tools/train.py configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py \
#       --cfg-options train_dataloader.dataset.source_bank=work_dirs/toy_baseline/source_bank
from mmengine.config import read_base

with read_base():
    from .cam_resnet18_1xb16_300it_toy_64x64 import *  # noqa: F401,F403
    from .._base_.models.csd_consistency import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmseg.datasets.transforms import LoadAnnotations, RandomCrop

from csd_mm.datasets import CSDDataset, ImageLevelDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs

source_bank = 'work_dirs/toy_baseline/source_bank'

# The target view and the source view are augmented independently (same crop size); the source's bank mask
# (1 fg / 0 bg / 255 unsure) is loaded as a segmentation map so that every geometric transform keeps it aligned.
target_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
]
source_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
]
paste_pipeline = [
    dict(type=CopyPaste, soft_edge_sigma=0.0),  # aligned hard paste (CSD_SPEC section 4)
    dict(type=PackCSDInputs),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
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
            metainfo=metainfo,
            pipeline=[]),
        source_bank=source_bank,
        pipeline=target_pipeline,
        source_pipeline=source_pipeline,
        paste_pipeline=paste_pipeline,
        sampling='cor',  # 'uniform': the paper's copy-paste-without-resampling ablation
        include_self=True,
        seed=0),
)

model.update(
    head=dict(consistency_loss=csd_consistency_loss))

# After training: CAMs of every training image (no source bank: that is stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
