# The embedded toy dataset (tools/dataset_converters/make_toy_voc.py): VOC layout, small images, 5 classes
# with a real co-occurrence confound. Seeds are evaluated on the training images (split 'train'), the WSSS
# convention, as on VOC. Same structure as voc12_cls.py so every VOC config has a toy twin.
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations

from csd_mm.datasets import ImageLevelDataset
from csd_mm.datasets.transforms import PackCAMInputs, RandomCropOrPad
from csd_mm.evaluation import SeedMetric

data_root = 'data/toy_voc'
label_file = 'cls_labels.npy'  # relative to data_root, like ann_file
crop_size = (64, 64)
# ImageNet mean (103.53, 116.28, 123.675) rounded, BGR uint8: padding ~0 after normalisation, as IRN's 0
img_pad_val = (104, 116, 124)
# the toy classes, as make_toy_voc writes them into meta.json
metainfo = dict(classes=('background', 'horse', 'rider', 'car', 'boat', 'bird'))

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    # IRN's random crop-or-pad: per axis, a larger image is cropped at a random offset, a smaller one placed at a
    # random offset in the mean-coloured container; gt_seg_map (CSD's prior mask) moves with it
    dict(type=RandomCropOrPad, crop_size=crop_size, img_pad_val=img_pad_val, seg_pad_val=255),
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
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        label_source='npy',
        label_file=label_file,
        metainfo=metainfo,
        pipeline=train_pipeline,
    ),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=False, round_up=False),
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        label_source='npy',
        label_file=label_file,
        metainfo=metainfo,
        pipeline=test_pipeline,
    ),
)
test_evaluator = dict(type=SeedMetric)
cam_dataloader = dict(
    batch_size=1,
    num_workers=0,
    dataset=dict(
        type=ImageLevelDataset,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        label_source='npy',
        label_file=label_file,
        metainfo=metainfo,
        pipeline=cam_pipeline,
    ),
)
