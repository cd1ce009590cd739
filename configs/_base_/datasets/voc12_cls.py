# PASCAL VOC 2012 with image-level labels (docs/data_preparation.md says how to lay it out).
# train: train_aug (10,582 images; VOC train + SBD minus VOC val), labels from cls_labels.npz (voc12/).
# test (seed evaluation, the WSSS convention): train (1,464) against SegmentationClassAug.
# cam: every train_aug image, for the CAMs that the source bank and the pseudo masks need.
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations

from csd_mm.datasets import ImageLevelDataset
from csd_mm.datasets.transforms import PackCAMInputs, RandomCropOrPad
from csd_mm.evaluation import SeedMetric

data_root = 'data/VOCdevkit/VOC2012'
label_file = 'cls_labels.npz'  # relative to data_root, like ann_file (voc12/cls_labels.npz; the community's .npy loads too)
crop_size = (512, 512)
# ImageNet mean (103.53, 116.28, 123.675) rounded, in the BGR order of the uint8 images the pipeline carries: the
# colour that IRN's normalise-then-fill-with-0 gives to the padding.
img_pad_val = (104, 116, 124)

# IRN's CAM training augmentation (voc12/dataloader.py, VOC12ClassificationDataset with resize_long=(320, 640),
# hor_flip=True, crop_size=512, crop_method='random'): random long-side resize to [320, 640] (PIL bicubic),
# normalise, horizontal flip (p=0.5), random 512 crop in a container filled with 0 after normalisation, i.e. the
# mean colour. No colour jitter. Normalisation is the data preprocessor's job here (after the pipeline); it is
# per-pixel, so moving it after the flip and the crop changes nothing but the padding, which therefore gets the
# mean colour explicitly. Every transform moves `gt_seg_map` with the image (the CSD configs reuse
# train_pipeline[1:-1] on the source image and its prior mask).
train_pipeline = [
    dict(type=LoadImageFromFile),
    # long side uniform over the integers 320..639 (IRN: 320..640), PIL bicubic as IRN; masks: nearest
    dict(type=RandomResize, scale=(640, 640), ratio_range=(0.5, 1.0), keep_ratio=True, backend='pillow',
         interpolation='bicubic'),
    dict(type=RandomFlip, prob=0.5),
    # per axis: a larger image is cropped at a random offset, a smaller one placed at a random offset (IRN)
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

# Workers per GPU process: IRN's os.cpu_count() // 2 on a 16-core node, and its pinned memory (MCTformer's config
# sets its own 10). A CSD pair costs 3 image loads; fewer workers leave the GPU waiting (docs/benchmarks.md).
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,  # IRN: 10582 // 16 = 661 iterations per epoch
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
# CAMs are computed at each image's own size (multi-scale inside the model): batch size 1. Seeds are evaluated on
# VOC train against its masks. The test and CAM datasets below are copies of the training one made when the
# config is read: a --cfg-options override (e.g. of data_root) must name each loader it should move (the CAM
# pass after training reads the copy in its hook: custom_hooks.0.dataloader.dataset.data_root=...).
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type=DefaultSampler, shuffle=False, round_up=False),  # each image exactly once
    dataset=dict(
        train_dataloader['dataset'],
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        pipeline=test_pipeline),
)
test_evaluator = dict(type=SeedMetric)
# the training images again, without augmentation, for their CAMs (CAMGenerationHook)
cam_dataloader = dict(
    batch_size=1,
    num_workers=8,
    dataset=dict(train_dataloader['dataset'], pipeline=cam_pipeline),
)
