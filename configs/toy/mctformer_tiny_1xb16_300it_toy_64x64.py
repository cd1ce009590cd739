# MCTformer-V2 (Xu et al., CVPR 2022) on the embedded toy dataset, CPU-sized: the toy twin of
# configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py. A tiny ViT from random init (embed 64, 4 blocks,
# 4 heads, patch 8: 64x64 images -> 8x8 patches, the same score-map size as the toy ResNet), 5 class tokens, the
# 3x3 conv patch-CAM head; AdamW with linear warm-up then cosine, 300 iterations of batch 16 (as the toy ResNet).
# CAMs: class-to-patch attention of the last 3 blocks x ReLU(patch CAM), flip (no patch-to-patch refinement, see
# test_cfg). Like the VOC config (same base model), no final LayerNorm on the tokens (MCTformer-V2).
# Toy deviations from the VOC recipe: the toy dataset's simple augmentation (random rescale 0.8-1.2, flip,
# 64x64 crop-or-pad; configs/_base_/datasets/toy_voc.py) instead of MCTformer's timm one (random resized crop
# 0.08-1, RandAugment m9-mstd0.5, random erasing), which is meant for an ImageNet-pretrained DeiT over 60 epochs,
# not for a tiny ViT trained from scratch for 300 iterations; an iteration-based MMEngine warm-up + cosine instead
# of timm's per-epoch schedule (TimmCosineLR); a larger lr (6e-3) for the random init.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.toy_voc import *  # noqa: F401,F403
    from .._base_.toy_runtime import *  # noqa: F401,F403
    from .._base_.models.mctformer_v2_deit_small import *  # noqa: F401,F403
    from .._base_.schedules.schedule_adamw_cosine_60e import *  # noqa: F401,F403

from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from csd_mm.engine.hooks import CAMGenerationHook
from csd_mm.engine.runner import NoPauseIterBasedTrainLoop

num_classes = 5
embed_dims = 64
model.update(
    backbone=dict(
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=4),
        num_classes=num_classes,
        img_size=64,
        patch_size=8,
        drop_path_rate=0.0),
    head=dict(in_channels=embed_dims, num_classes=num_classes),
    # No patch-to-patch refinement: the attention of a tiny ViT trained from scratch on 200 images is not an
    # affinity yet (MCTformer refines with a trained DeiT's). Measured on the toy baseline (seed 0, min-max
    # normalised maps, 2026-12-01; docs/results.md): seed mIoU 18.45 without the refinement, 12.65 with it.
    test_cfg=dict(scales=(1.0, ), flip=True, num_cam_layers=3, patch_refine=False))

train_dataloader.update(batch_size=16)
max_iters = 300
warmup_iters = 25
# the sampler restarts every epoch without mmengine's 2-s pause (same batches; csd_mm.engine.runner)
train_cfg = dict(type=NoPauseIterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters + 1)
optim_wrapper.update(optimizer=dict(type=AdamW, lr=6e-3, weight_decay=0.05))
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-3, begin=0, end=warmup_iters, by_epoch=False),
    dict(type=CosineAnnealingLR, T_max=max_iters - warmup_iters, eta_min=1e-5, begin=warmup_iters,
         end=max_iters, by_epoch=False),
]

# After training: CAMs of every training image and CSD's source bank (stage 0) from the single-label ones.
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
