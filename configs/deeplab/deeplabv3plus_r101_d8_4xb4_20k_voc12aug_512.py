# DeepLabV3+ ResNetV1c-101-d8 trained on the PSEUDO MASKS of VOC train_aug, evaluated on VOC val with IoUMetric:
# mmseg 1.2.2's deeplabv3plus_r101-d8_4xb4-20k_voc12aug-512x512 (4 GPUs x 4 images, 512x512 crops, SGD lr 0.01,
# poly, 20k iterations, val every 2k) in Python style, the segmentation step of CSD (Yang et al., BMVC 2023).
#
# Train (pseudo masks from tools/make_pseudo_masks.py; the ImageNet ResNetV1c-101 weights from a LOCAL file):
#   bash tools/dist_train.sh configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py 4 --cfg-options \
#       train_dataloader.dataset.data_prefix.seg_map_path=/abs/path/to/pseudo_masks \
#       model.pretrained=/path/to/resnet101_v1c.pth
# Evaluate on val (mIoU); the SegPredictionExportHook below also writes every prediction as a PNG
# (--tta: mmseg's 6 scales x flip; --show-dir DIR: drawn predictions; --out DIR: mmseg's flat <id>.png folder):
#   python tools/test.py configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py CKPT
#   -> <work_dir>/voc_results/results/VOC2012/Segmentation/comp6_val_cls/<id>.png
#   (--cfg-options custom_hooks.0.out_dir=/abs/dir, custom_hooks.0.voc_format=False for a flat <id>.png folder,
#    custom_hooks=[] for none)
# VOC test server: a child config with `test_dataloader = test_server_dataloader`,
# `test_evaluator = test_server_evaluator` (from the dataset base) and `custom_hooks[0].update(voc_split='test')`
# writes <work_dir>/voc_results/results/VOC2012/Segmentation/comp6_test_cls/<id>.png: archive `results/`, upload.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.voc12aug_pseudo_masks import *
    from .._base_.default_runtime import *
    from .._base_.models.deeplabv3plus_r50_d8 import *
    from .._base_.schedules.schedule_20k import *

from csd_mm.engine.hooks import SegPredictionExportHook

num_classes = 21  # background + 20 VOC classes
data_preprocessor.update(size=crop_size)
model.update(
    data_preprocessor=data_preprocessor,
    backbone=dict(depth=101),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))
default_hooks.update(checkpoint=checkpoint_hook)

# Writes pred_sem_seg of every test image as a uint8 PNG of class ids (only in the test loop, not in training).
custom_hooks = [dict(type=SegPredictionExportHook, out_dir='voc_results', voc_format=True, voc_split='val')]
