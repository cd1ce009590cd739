# DeepLabV3+ (Chen et al., ECCV 2018) with a dilated ResNetV1c-50 (output stride 8), mmseg 1.2.2's
# configs/_base_/models/deeplabv3plus_r50-d8.py ported to a Python-style config (classes as `type`). It is the
# segmentation network of the last WSSS step (Yang et al., "Cross-domain Semantic Decoupling for
# Weakly-Supervised Semantic Segmentation", BMVC 2023): trained on the pseudo masks, evaluated on VOC val.
#
# Children set `num_classes` of both heads (21 for VOC: background + 20) and the backbone depth, e.g.
#   model.update(backbone=dict(depth=101), decode_head=dict(num_classes=21), auxiliary_head=dict(num_classes=21))
#
# Pretrained weights are never downloaded (mmseg's stock config uses 'open-mmlab://resnet50_v1c'). Point the
# model at a LOCAL ImageNet ResNetV1c checkpoint (e.g. mmseg's resnet50_v1c / resnet101_v1c .pth), either in a
# child config or on the command line:
#   --cfg-options model.pretrained=/path/to/resnet101_v1c.pth
# (EncoderDecoder hands `pretrained` to the backbone, which loads it with a Pretrained init_cfg). Without it the
# backbone starts from mmseg's default (Kaiming) initialisation.
#
# Norm layers are SyncBN as in mmseg: mmengine's Runner reverts them to BatchNorm when not distributed.
# SyncBN needs GPUs; on CPU (tests, gloo DDP) use norm_cfg = dict(type=BatchNorm2d, requires_grad=True).
from mmseg.models import (DepthwiseSeparableASPPHead, EncoderDecoder, FCNHead, ResNetV1c,
                          SegDataPreProcessor, SegTTAModel)
from mmseg.models.losses import CrossEntropyLoss
from torch.nn import SyncBatchNorm

norm_cfg = dict(type=SyncBatchNorm, requires_grad=True)
data_preprocessor = dict(
    type=SegDataPreProcessor,
    mean=[123.675, 116.28, 103.53],  # ImageNet statistics, RGB, 0-255 scale
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,  # images are loaded as BGR uint8
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type=EncoderDecoder,
    data_preprocessor=data_preprocessor,
    pretrained=None,  # a LOCAL checkpoint path, see above
    backbone=dict(
        type=ResNetV1c,
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=None),
    decode_head=dict(
        type=DepthwiseSeparableASPPHead,
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        c1_in_channels=256,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type=FCNHead,
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=0.4)),
    # model training and testing settings
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# `tools/test.py --tta` wraps the model in this (mmseg 1.2.2: configs/_base_/default_runtime.py); the
# dataset config defines the `tta_pipeline`.
tta_model = dict(type=SegTTAModel)
