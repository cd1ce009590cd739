# IRN's CAM network (Ahn et al., CVPR 2019; jiwoon-ahn/irn step/train_cam.py and step/make_cam.py) on PASCAL VOC
# 2012 train_aug: the ResNet-50 baseline (stage 0) of CSD (Yang et al., BMVC 2023). Output stride 16, stem +
# layer1 + layer2 frozen, BatchNorm statistics frozen; long side 320-640, flip, random 512 crop-or-pad (no colour
# jitter); batch 16 (drop_last); SGD lr 0.1 (x10 on the head), weight decay 1e-4, momentum 1e-4 (IRN's effective
# value, see configs/_base_/schedules/schedule_sgd_poly_5e.py), poly power 0.9, 5 epochs; CAMs with scales
# (1.0, 0.5, 1.5, 2.0) + flip, upsampled to the stride-16-aligned size and cropped, as IRN.
#
#   python tools/train.py configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py \
#       --cfg-options "model.backbone.init_cfg.type=Pretrained" \
#                     "model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth"
#
# Pretrained weights are never downloaded: without a LOCAL ImageNet checkpoint (see
# configs/_base_/models/resnet50_cam.py) the backbone starts from random initialisation, which is not IRN's
# setting (and, with frozen_stages=2, leaves the stem and layers 1-2 random).
#
# After training, the CAM hook writes the CAMs of every train_aug image (<work_dir>/cams) and CSD's source bank
# (<work_dir>/source_bank: tau_fg 0.30 / tau_bg 0.05 masks of the single-label images), the input of
# configs/csd/resnet50_csd_voc.py; tools/test.py evaluates the seeds on VOC train.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.voc12_cls import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.resnet50_cam import *  # noqa: F401,F403
    from .._base_.schedules.schedule_sgd_poly_5e import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
