# Stage 0 (IRN's ResNet-50 CAM network) on YOUR OWN VOC-format dataset (docs/extending.md): copy this file and set
# `data_root` and the classes. The dataset needs
#   <data_root>/JPEGImages/<id>.jpg
#   <data_root>/Annotations/<id>.xml               VOC XML; each <object><name> is one of the classes below
#   <data_root>/ImageSets/Segmentation/train.txt   the training ids (one per line)
# and, for the seed evaluation of tools/test.py, masks of some images:
#   <data_root>/SegmentationClass/<id>.png         0 background, c + 1 for classes[c + 1], 255 ignore
#   <data_root>/ImageSets/Segmentation/val.txt
# Stage 1 (CSD) is configs/csd/resnet50_csd_voc.py with the same changes (+ its source bank); stage 3 is a
# configs/deeplab config with `metainfo`, `num_classes` of both heads and the data paths changed likewise.
from mmengine.config import read_base

with read_base():
    from ..resnet50_cam.resnet50_cam_1xb16_5e_voc12aug_512 import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

data_root = 'data/my_voc'
# background first, then the C foreground classes in label order
metainfo = dict(classes=('background', 'apple', 'pear', 'plum'))
num_classes = len(metainfo['classes']) - 1
model.update(head=dict(num_classes=num_classes))

# image-level labels from the XML files (or write cls_labels.npy once with
# tools/dataset_converters/make_cls_labels.py ROOT --splits ... --classes apple pear plum, and use
# label_source='npy', label_file='cls_labels.npy': the VOC base's label_file is cls_labels.npz)
dataset_args = dict(data_root=data_root, metainfo=metainfo, label_source='xml')
train_dataloader.dataset.update(ann_file='ImageSets/Segmentation/train.txt', **dataset_args)
cam_dataloader.dataset.update(ann_file='ImageSets/Segmentation/train.txt', **dataset_args)
test_dataloader.dataset.update(ann_file='ImageSets/Segmentation/val.txt',
                               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                               **dataset_args)
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
