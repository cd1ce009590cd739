# The toy twin of voc12_affinity_labels.py: the embedded toy dataset's train_aug images with confident labels
# made from the CAMs of the toy CAM baseline, the training data of the toy refiner networks
# (configs/toy/aff_*, configs/toy/irn_*). voc12_affinity_labels.py's dataset on the toy's files and classes, no
# loader workers (the toy runs in-process), batch 8; the child config sets the label recipe and the augmentation.
from mmengine.config import read_base

with read_base():
    from .voc12_affinity_labels import *  # noqa: F401,F403

data_root = 'data/toy_voc'
metainfo = dict(classes=('background', 'horse', 'rider', 'car', 'boat', 'bird'))

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=True,
    sampler=train_dataloader['sampler'],
    dataset=dict(
        train_dataloader['dataset'],
        cam_dir='work_dirs/cam_resnet18_1xb16_300it_toy_64x64/cams',  # used as given (not under data_root)
        data_root=data_root,
        metainfo=metainfo),
)
