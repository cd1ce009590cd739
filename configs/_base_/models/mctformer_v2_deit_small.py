# MCTformer-V2 (Xu et al., CVPR 2022) on DeiT-S/16, the transformer baseline of CSD (Yang et al., BMVC 2023),
# for PASCAL VOC (20 foreground classes).
#
# - DeiT-S/16 with one class token per class (each with its own position embedding); class scores = mean over
#   the embedding of each class token of the LAST BLOCK (MCTformer-V2 applies no final LayerNorm: its
#   forward_features returns the last block's tokens; DeiT's norm is loaded but unused, frozen here); a 3x3 conv
#   head with bias on the patch tokens (also without final norm) gives the patch CAM (the score map F of the CSD
#   losses), GAP -> second logits; both logits are trained with the multi-label soft-margin loss (loss_cls and
#   loss_patch).
# - Train on 224 crops (a multiple of the patch size 16; other sizes are zero-padded bottom/right by the patch
#   embedding). The position embedding is stored for img_size=224 and interpolated for other input sizes.
# - CAM inference: class-to-patch attention (mean over heads, sum over the last 3 blocks) x ReLU(patch CAM),
#   refined by the patch-to-patch attention of all blocks, with the horizontal flip; single scale as MCTformer
#   (add scales, e.g. (1.0, 0.5, 1.5, 2.0), for multi-scale).
#
# Pretrained weights are never downloaded. Point the backbone at a LOCAL ImageNet DeiT-S checkpoint, official
# DeiT/timm layout (e.g. deit_small_patch16_224-cd65a155.pth) or mmpretrain VisionTransformer layout:
#   model['backbone']['pretrained'] = '/path/to/deit_small_patch16_224-cd65a155.pth'
# (or set deit_checkpoint below). The class token and its position embedding are repeated 20 times, the patch
# position embedding is interpolated to the 14x14 grid and the DeiT classifier head is dropped; a checkpoint
# that does not fit raises an error naming the file and the offending keys. Without it the backbone starts from
# DeiT's random initialisation.
from csd_mm.models.backbones import MCTformerViT
from csd_mm.models.classifiers import MCTformerV2Classifier
from csd_mm.models.data_preprocessors import MultiViewDataPreprocessor
from csd_mm.models.heads import CAMHead

num_classes = 20
deit_checkpoint = None  # e.g. 'checkpoints/deit_small_patch16_224-cd65a155.pth' (a local file)

data_preprocessor = dict(
    type=MultiViewDataPreprocessor,
    mean=[123.675, 116.28, 103.53],  # ImageNet statistics, RGB, 0-255 scale (DeiT)
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)  # images are loaded as BGR uint8

model = dict(
    type=MCTformerV2Classifier,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type=MCTformerViT,
        arch='deit-small',  # embed 384, 12 blocks, 6 heads
        num_classes=num_classes,
        img_size=224,
        patch_size=16,
        drop_rate=0.0,
        drop_path_rate=0.1,  # DeiT-S / MCTformer
        interpolate_mode='bicubic',
        final_norm=False,  # MCTformer-V2: no final LayerNorm on the class / patch tokens
        pretrained=deit_checkpoint),
    head=dict(type=CAMHead, in_channels=384, num_classes=num_classes, kernel_size=3, bias=True,
              loss_weight=1.0),
    test_cfg=dict(scales=(1.0, ), flip=True, num_cam_layers=3, patch_refine=True, resize_mode='bicubic'))
