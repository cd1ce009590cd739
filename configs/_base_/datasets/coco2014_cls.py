# MS COCO 2014 with image-level labels (docs/data_preparation.md: tools/dataset_converters/coco2014_to_wsss.py
# writes cls_labels.npz, the class-index masks and the split lists beside COCO's own image folders).
# train: the train2014 images with at least one label (ImageSets/train2014_cls.txt, about 82,081 of 82,783; an image
#   without any label cannot train a classifier); IRN's augmentation, as voc12_cls.py (the MCTformer configs
#   replace the pipeline with timm's, as on VOC).
# test (seed evaluation): val2014 against its masks (the reading of issue 13; MCTformer's run_coco.sh writes the
#   CAMs of its train list and ships no COCO seed evaluation): ImageSets/val2014_cls.txt, about 40,137 of 40,504.
# cam: every labelled train2014 image, for the CAMs that the source bank and the pseudo masks need.
from mmengine.config import read_base

with read_base():
    from .voc12_cls import *  # noqa: F401,F403  (pipelines, loaders, SeedMetric; the datasets are re-pointed below)

data_root = 'data/coco'
label_file = 'cls_labels.npz'  # relative to data_root; 80-vectors in COCO's category-id order
# COCO's 80 classes in the standard order (ascending category id; csd_mm.datasets.coco.COCO_CLASSES)
coco_classes = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse',
    'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase',
    'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
    'toothbrush')
metainfo = dict(classes=('background', ) + coco_classes)

train_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/train2014_cls.txt', data_prefix=dict(img_path='train2014'),
    label_file=label_file, metainfo=metainfo)
test_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/val2014_cls.txt',
    data_prefix=dict(img_path='val2014', seg_map_path='SegmentationClass/val2014'), label_file=label_file,
    metainfo=metainfo)
cam_dataloader['dataset'].update(
    data_root=data_root, ann_file='ImageSets/train2014_cls.txt', data_prefix=dict(img_path='train2014'),
    label_file=label_file, metainfo=metainfo)
