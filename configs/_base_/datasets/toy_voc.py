# The embedded toy dataset (tools/dataset_converters/make_toy_voc.py): VOC layout, small images, 5 classes
# with a real co-occurrence confound. Seeds are evaluated on the training images (split 'train'), the WSSS
# convention, as on VOC. voc12_cls.py's splits, test / CAM pipelines and datasets (so every VOC config has a toy
# twin), re-pointed at the toy: its own rescale and 64x64 crop, its classes, no loader workers.
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.config import read_base

with read_base():
    from .voc12_cls import *  # noqa: F401,F403

from csd_mm.datasets.transforms import PackCAMInputs, RandomCropOrPad

data_root = 'data/toy_voc'
label_file = 'cls_labels.npy'  # relative to data_root, like ann_file
crop_size = (64, 64)
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
# VOC's datasets on the toy's files; the loaders without VOC's workers (num_workers=0: the toy runs in-process)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=train_dataloader['sampler'],
    dataset=dict(train_dataloader['dataset'], data_root=data_root, label_file=label_file, metainfo=metainfo,
                 pipeline=train_pipeline),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=test_dataloader['sampler'],
    dataset=dict(test_dataloader['dataset'], data_root=data_root, label_file=label_file, metainfo=metainfo),
)
cam_dataloader.update(num_workers=0)
cam_dataloader['dataset'].update(data_root=data_root, label_file=label_file, metainfo=metainfo)
