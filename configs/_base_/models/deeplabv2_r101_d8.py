# DeepLab-v2 (Chen et al., TPAMI 2018) as the WSSS literature trains it on pseudo masks (IRN, Ahn et al.,
# CVPR 2019; MCTformer, Xu et al., CVPR 2022; CSD, Yang et al., BMVC 2023): a dilated ResNet-101 (output
# stride 8) with an ASPP of four atrous rates (6, 12, 18, 24). Built from stock mmseg parts, no new model code.
#
# mmseg's ASPPHead with dilations (6, 12, 18, 24) on ResNetV1c-101-d8 is a faithful stand-in for DeepLab-v2's
# ASPP, not a bit-exact copy: DeepLab-v2 sums the class scores of four 3x3 atrous classifier branches, while
# ASPPHead concatenates four atrous 3x3 conv + BN + ReLU branches and an image-pooling branch, fuses them with a
# 3x3 bottleneck conv and classifies with a 1x1 conv (ResNetV1c also has the deep 3-conv stem). Same rates,
# same receptive field, same output stride; no auxiliary head (DeepLab-v2 has none). "LargeFOV" (DeepLab-v1 on
# VGG-16: one 3x3 conv at rate 12) is the single-branch special case: dilations=(12, ).
#
# Pretrained weights are never downloaded: --cfg-options model.pretrained=/path/to/resnet101_v1c.pth loads a
# LOCAL ImageNet checkpoint. Norm layers are SyncBN (reverted to BatchNorm by the Runner when not distributed).
#
# The data preprocessor, the ResNetV1c-d8 backbone and the TTA wrapper are deeplabv3plus_r50_d8.py's (mmseg's
# DeepLab family shares them); this file changes the depth, the head and drops the auxiliary head.
from mmengine.config import read_base
from mmseg.models import ASPPHead
from mmseg.models.losses import CrossEntropyLoss

with read_base():
    from .deeplabv3plus_r50_d8 import *  # noqa: F401,F403

model.backbone.depth = 101
model.decode_head = dict(
    type=ASPPHead,
    in_channels=2048,
    in_index=3,
    channels=512,
    dilations=(6, 12, 18, 24),  # DeepLab-v2's ASPP-L rates
    dropout_ratio=0.1,
    num_classes=21,
    norm_cfg=norm_cfg,
    align_corners=False,
    loss_decode=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=1.0))
model.pop('auxiliary_head')  # DeepLab-v2 has none
