# PASCAL VOC 2012 with image-level labels (docs/data_preparation.md says how to lay it out).
# train: train_aug (10,582 images; VOC train + SBD minus VOC val), labels from cls_labels.npy.
# test (seed evaluation, the WSSS convention): train (1,464) against SegmentationClassAug.
# cam: every train_aug image, for the CAMs that the source bank and the pseudo masks need.
from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations, PhotoMetricDistortion, RandomCrop

from csd_mm.datasets import ImageLevelDataset
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.evaluation import SeedMetric

data_root = 'data/VOCdevkit/VOC2012'
label_file = 'cls_labels.npy'  # relative to data_root, like ann_file
crop_size = (512, 512)

train_pipeline = [
    dict(type=LoadImageFromFile),
    # IRN: long side resized to [320, 640], flip, colour jitter, random crop 512 (zero-padded)
    dict(type=RandomResize, scale=(640, 640), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
    dict(type=PackCAMInputs),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=PackCAMInputs),
]
cam_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=PackCAMInputs),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        label_source='npy',
        label_file=label_file,
        pipeline=train_pipeline,
    ),
)
# CAMs are computed at each image's own size (multi-scale inside the model): batch size 1.
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type=DefaultSampler, shuffle=False, round_up=False),  # each image exactly once
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        label_source='npy',
        label_file=label_file,
        pipeline=test_pipeline,
    ),
)
test_evaluator = dict(type=SeedMetric)
cam_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        label_source='npy',
        label_file=label_file,
        pipeline=cam_pipeline,
    ),
)
