# (File name as the WSSS papers call their "DeepLab-v2 / LargeFOV" stage; the head is the ASPP of DeepLab-v2.)
# DeepLab-v2 (ASPP rates 6/12/18/24 on a dilated ResNetV1c-101, see configs/_base_/models/deeplabv2_r101_d8.py)
# trained on the PSEUDO MASKS of VOC train_aug and evaluated on VOC val with IoUMetric: the kind of segmentation
# network the WSSS literature trains in its last step (CSD: Yang et al., BMVC 2023), not any baseline's exact one
# (MCTformer's seg/train_seg.py trains a ResNet-38 with two 3x3 dilation-12 convs, crop 321, batch 4, lr 7e-4,
# 30 epochs, multi-scale + CRF testing; docs/method.md section 8). Data, crop and schedule as the DeepLabV3+ twin
# (mmseg's voc12aug 512x512, 4 GPUs x 4 images, SGD lr 0.01, poly, 20k iterations).
#
#   bash tools/dist_train.sh configs/deeplab/deeplabv2_largefov_r101_4xb4_20k_voc12aug_512.py 4 --cfg-options \
#       train_dataloader.dataset.data_prefix.seg_map_path=/abs/path/to/pseudo_masks \
#       model.pretrained=/path/to/resnet101_v1c.pth
#   python tools/test.py configs/deeplab/deeplabv2_largefov_r101_4xb4_20k_voc12aug_512.py CKPT   # [--tta]
# (val mIoU, and the predictions in <work_dir>/voc_results/results/VOC2012/Segmentation/comp6_val_cls/<id>.png;
# the VOC test server recipe is in the DeepLabV3+ twin)
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.voc12aug_pseudo_masks import *
    from .._base_.default_runtime import *
    from .._base_.models.deeplabv2_r101_d8 import *
    from .._base_.schedules.schedule_20k import *

from csd_mm.engine.hooks import SegPredictionExportHook

num_classes = 21  # background + 20 VOC classes
data_preprocessor.update(size=crop_size)
model.update(data_preprocessor=data_preprocessor, decode_head=dict(num_classes=num_classes))
default_hooks.update(checkpoint=checkpoint_hook)

# Writes pred_sem_seg of every test image as a uint8 PNG of class ids (only in the test loop, not in training).
custom_hooks = [dict(type=SegPredictionExportHook, out_dir='voc_results', voc_format=True, voc_split='val')]
