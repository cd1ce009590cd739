# PASCAL VOC 2012 train_aug with CONFIDENT LABELS made from a CAM network's CAMs, the training data of the
# stage-2 refiner networks: PSA's AffinityNet (configs/psa_affinity/) and IRN's BoundaryNet (configs/irn/).
# csd_mm.refine.AffinityLabelDataset reads the CAMs of `cam_dir` and caches the labels (0 background, c + 1,
# 255 unsure) beside them; the child config chooses the recipe (PSA's CRF alphas low_alpha / high_alpha, the
# default; IRN's thresholds: confident_labels='irn', conf_fg / conf_bg), the batch size and the augmentation:
#   train_dataloader.update(batch_size=...)
#   train_dataloader.dataset.update(<label recipe>, pipeline=train_pipeline)
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs

from csd_mm.refine import AffinityLabelDataset

data_root = 'data/VOCdevkit/VOC2012'

# without augmentation; each network's config writes its own between the loading and the packing
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),  # the cached confident labels (0, c + 1, 255)
    dict(type=PackSegInputs),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,  # as PSA's and IRN's loaders
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=AffinityLabelDataset,
        cam_dir='work_dirs/cams_voc12_train_aug',  # set to the CAM folder of the CAM network
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        pipeline=train_pipeline,
    ),
)
