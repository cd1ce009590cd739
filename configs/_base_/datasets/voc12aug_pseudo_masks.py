# PASCAL VOC 2012 for the segmentation step of WSSS (Yang et al., BMVC 2023): DeepLab trains on
# the train_aug images (10,582) with the PSEUDO MASKS of the previous step as labels, and is evaluated on val
# (1,449) against the ground truth with mmseg's IoUMetric. Pipelines, crop (512x512) and loaders are mmseg
# 1.2.2's configs/_base_/datasets/pascal_voc12_aug.py, ported to a Python-style config.
#
# `pseudo_mask_dir` is the folder of <img_id>.png pseudo masks (single-channel uint8, values 0..20, 255 ignore)
# that tools/make_pseudo_masks.py writes. As every data_prefix entry it is taken relative to `data_root` unless
# absolute; override it for a run with
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=/abs/path/to/pseudo_masks
from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize, Resize, TestTimeAug
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmseg.datasets import PascalVOCDataset
from mmseg.datasets.transforms import (LoadAnnotations, PackSegInputs, PhotoMetricDistortion,
                                       RandomCrop)
from mmseg.evaluation import IoUMetric

data_root = 'data/VOCdevkit/VOC2012'
# e.g. python tools/make_pseudo_masks.py CAMS data/VOCdevkit/VOC2012/JPEGImages \
#          data/VOCdevkit/VOC2012/pseudo_masks --ids data/VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt
pseudo_mask_dir = 'pseudo_masks'  # relative to data_root unless absolute
crop_size = (512, 512)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the pseudo mask
    dict(type=RandomResize, scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type=RandomCrop, crop_size=crop_size, cat_max_ratio=0.75),
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
    dict(type=PackSegInputs),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=Resize, scale=(2048, 512), keep_ratio=True),
    # annotations are loaded after Resize: the predictions are resized back to the original size
    dict(type=LoadAnnotations),
    dict(type=PackSegInputs),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=PascalVOCDataset,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_mask_dir),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=PascalVOCDataset,
        data_root=data_root,
        # VOC's own val masks (SegmentationClassAug holds the same val masks)
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type=IoUMetric, iou_metrics=['mIoU'])
test_evaluator = val_evaluator
# Test-time augmentation for `tools/test.py --tta` (with the model's `tta_model`): mmseg 1.2.2's
# configs/_base_/datasets/pascal_voc12.py, six scales of the original image x horizontal flip.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=TestTimeAug,
         transforms=[[dict(type=Resize, scale_factor=r, keep_ratio=True) for r in img_ratios],
                     [dict(type=RandomFlip, prob=0., direction='horizontal'),
                      dict(type=RandomFlip, prob=1., direction='horizontal')],
                     [dict(type=LoadAnnotations)],
                     [dict(type=PackSegInputs)]]),
]

# VOC test set (no masks) for the evaluation server: a child config sets
#   test_dataloader = test_server_dataloader; test_evaluator = test_server_evaluator
# and adds csd_mm's SegPredictionExportHook (see configs/deeplab/*.py) to write the PNGs.
test_server_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=Resize, scale=(2048, 512), keep_ratio=True),
    dict(type=PackSegInputs),
]
# val's loader on the test split (its masks, data_prefix.seg_map_path, are not read), each image exactly once
test_server_dataloader = dict(
    val_dataloader,
    sampler=dict(type=DefaultSampler, shuffle=False, round_up=False),
    dataset=dict(val_dataloader['dataset'], ann_file='ImageSets/Segmentation/test.txt',
                 pipeline=test_server_pipeline))
test_server_evaluator = dict(type=IoUMetric, iou_metrics=['mIoU'], format_only=True)  # no GT: nothing scored
