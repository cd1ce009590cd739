# The toy DeepLabV3+ (configs/toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py: model, schedule, pipelines with
# the 64 px images resized 2x) on the COCO-format toy dataset: trained on the pseudo masks of the labelled
# train2014 images, evaluated on val2014 against the converted masks (255 on crowd regions), 81 classes as on
# COCO. tools/run_pipeline.py --dataset coco runs it.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco2014_cls import coco_classes  # noqa: F401
    from .deeplabv3plus_r18_1xb8_1300it_toy_64x64 import *  # noqa: F401,F403

data_root = 'data/toy_coco'
# palette []: replaces the toy's 6 colours (mmseg then draws a seeded palette for the 81 classes)
metainfo = dict(classes=('background', ) + coco_classes, palette=[])
num_classes = len(metainfo['classes'])  # 81
train_dataloader['dataset'].update(
    data_root=data_root, metainfo=metainfo, ann_file='ImageSets/train2014_cls.txt',
    data_prefix=dict(img_path='train2014', seg_map_path='pseudo_masks'))
val_dataloader['dataset'].update(
    data_root=data_root, metainfo=metainfo, ann_file='ImageSets/val2014.txt',
    data_prefix=dict(img_path='val2014', seg_map_path='SegmentationClass/val2014'))
test_dataloader = val_dataloader
model.update(decode_head=dict(num_classes=num_classes), auxiliary_head=dict(num_classes=num_classes))
custom_hooks = [dict(type=SegPredictionExportHook, out_dir='preds', voc_format=False)]
