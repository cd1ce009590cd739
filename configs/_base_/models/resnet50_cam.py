# IRN-style ResNet-50 CAM network (Ahn et al., CVPR 2019), the stage-0 baseline of CSD (Yang et al., BMVC 2023),
# for PASCAL VOC (20 foreground classes).
#
# - Output stride 16: mmpretrain's stem (conv stride 2 + max-pool stride 2) with stage strides (1, 2, 2, 1), i.e.
#   IRN's torchvision ResNet-50 with strides (2, 2, 2, 1), no dilation.
# - IRN (net/resnet50.py) replaces every BatchNorm by FixedBatchNorm, which always normalises with the ImageNet
#   running statistics (it calls F.batch_norm with training=False); the affine parameters of layer3 and layer4
#   still train -> norm_eval=True with requires_grad=True.
# - IRN (net/resnet50_cam.py) detaches the output of layer2 (`self.stage2(x).detach()`) and sets
#   requires_grad=False on conv1 / bn1, so the stem, layer1 and layer2 get no gradient and no weight decay
#   -> frozen_stages=2 (set 0 to train them as well).
# - 1x1 classifier without bias (IRN: nn.Conv2d(2048, 20, 1, bias=False) after global average pooling, which for
#   a linear map equals pooling the score map). The head lives under the name prefix `head.`, so a schedule can
#   give it IRN's 10x learning rate with paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)}).
#
# Pretrained weights are never downloaded. Point the backbone at a LOCAL ImageNet checkpoint, e.g.
#   model.backbone.init_cfg = dict(type='Pretrained', checkpoint='/path/to/resnet50.pth')
# (a torchvision resnet50 state dict loads as is: mmpretrain's ResNet uses the same parameter names; its fc.* keys
# are reported as unexpected and ignored; for an mmpretrain classifier checkpoint add prefix='backbone.'). IRN
# uses torchvision's original resnet50-19c8e357.pth. Without it the backbone starts from mmpretrain's
# default (Kaiming) initialisation.
from mmpretrain.models import ResNet

from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.data_preprocessors import MultiViewDataPreprocessor
from csd_mm.models.heads import CAMHead

num_classes = 20

data_preprocessor = dict(
    type=MultiViewDataPreprocessor,
    mean=[123.675, 116.28, 103.53],  # ImageNet statistics, RGB, 0-255 scale
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)  # images are loaded as BGR uint8

model = dict(
    type=CAMClassifier,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type=ResNet,
        depth=50,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1),
        out_indices=(3, ),
        frozen_stages=2,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch'),
    head=dict(type=CAMHead, in_channels=2048, num_classes=num_classes, kernel_size=1, bias=False,
              loss_weight=1.0),
    # IRN's CAM inference (step/make_cam.py, run_sample.py cam_scales): the image rescaled by each of
    # (1.0, 0.5, 1.5, 2.0) to round(H * s) x round(W * s) (IRN: PIL bicubic; here torch's antialiased bicubic,
    # within about one grey level), each with its horizontal flip; ReLU, flip pair summed, each scale upsampled
    # (bilinear, align_corners=False) to the stride-16-aligned size ceil(H / 16) * 16 x ceil(W / 16) * 16,
    # summed over scales, cropped to H x W; the image's own classes kept, each divided by its maximum + 1e-5.
    # Test batch size 1 (IRN); larger batches work (each sample is cropped to its img_shape).
    test_cfg=dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True, resize_mode='bicubic', output_stride=16))
