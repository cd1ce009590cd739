# MS COCO 2014 for the segmentation step of WSSS: DeepLab trains on the labelled train2014 images (82,081) with
# the PSEUDO MASKS of the previous step (tools/make_pseudo_masks.py; values 0..80, 255 ignore) and is evaluated on
# every val2014 image (40,504; the converter's masks, 255 on crowd regions) with mmseg's IoUMetric over 81
# classes. Pipelines and crop (512x512) are voc12aug_pseudo_masks.py's (mmseg's VOC-aug ones); the dataset is
# mmseg's BaseSegDataset with COCO's class list (no label remapping: the masks already hold 0..80).
#
# `pseudo_mask_dir` is relative to data_root unless absolute; override it for a run with
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=/abs/path/to/pseudo_masks
from mmengine.config import read_base

with read_base():
    from .coco2014_cls import coco_classes  # noqa: F401
    from .voc12aug_pseudo_masks import *  # noqa: F401,F403

from mmseg.datasets import BaseSegDataset

data_root = 'data/coco'
pseudo_mask_dir = 'pseudo_masks'
metainfo = dict(classes=('background', ) + coco_classes)

train_dataloader['dataset'] = dict(
    type=BaseSegDataset, data_root=data_root, metainfo=metainfo, img_suffix='.jpg', seg_map_suffix='.png',
    data_prefix=dict(img_path='train2014', seg_map_path=pseudo_mask_dir), ann_file='ImageSets/train2014_cls.txt',
    pipeline=train_pipeline)
val_dataloader['dataset'] = dict(
    type=BaseSegDataset, data_root=data_root, metainfo=metainfo, img_suffix='.jpg', seg_map_suffix='.png',
    data_prefix=dict(img_path='val2014', seg_map_path='SegmentationClass/val2014'), ann_file='ImageSets/val2014.txt',
    pipeline=test_pipeline)
test_dataloader = val_dataloader
