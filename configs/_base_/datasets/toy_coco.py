# The COCO-format toy dataset (csd_mm/datasets/toy_coco.py, converted by
# tools/dataset_converters/coco2014_to_wsss.py --toy): the toy scenes in COCO 2014's layout with COCO's 80
# classes, the toy twin of coco2014_cls.py. The toy pipelines are toy_voc.py's. Seeds are evaluated on the
# labelled train2014 images, as the toy VOC's on train (tools/run_pipeline.py --dataset coco reads the same
# split); the val2014 images serve DeepLab.
from mmengine.config import read_base

with read_base():
    from .coco2014_cls import coco_classes  # noqa: F401
    from .toy_voc import *  # noqa: F401,F403

data_root = 'data/toy_coco'
label_file = 'cls_labels.npz'
metainfo = dict(classes=('background', ) + coco_classes)

train_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/train2014_cls.txt', data_prefix=dict(img_path='train2014'),
    label_file=label_file, metainfo=metainfo)
test_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/train2014_cls.txt',
    data_prefix=dict(img_path='train2014', seg_map_path='SegmentationClass/train2014'), label_file=label_file,
    metainfo=metainfo)
cam_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/train2014_cls.txt', data_prefix=dict(img_path='train2014'),
    label_file=label_file, metainfo=metainfo)
