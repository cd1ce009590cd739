# MCTformer-V2 (Xu et al., CVPR 2022) on PASCAL VOC 2012 train_aug: the transformer baseline (stage 0) of CSD
# (Yang et al., BMVC 2023). DeiT-S/16 without final LayerNorm, 224 crops, DeiT's timm augmentation, batch 64 in
# total, AdamW lr 5e-4 * 64 / 512, weight decay 0.05, timm's per-epoch cosine (5 warm-up epochs), 60 epochs.
#
# Batch: MCTformer's run.sh trains with --batch-size 64 in ONE process (main.py never initialises distributed
# training, so the lr rule 5e-4 * batch * world_size / 512 gives 6.25e-5). This config splits the same total
# batch of 64 over 8 GPUs x 8 ("8xb8"); the ViT has no BatchNorm, so the split changes nothing but the data
# order. On 1 GPU: train_dataloader.batch_size=64. On another total batch size set auto_scale_lr.enable=True
# (the lr is scaled linearly from base_batch_size 64, MCTformer's rule).
#
#   bash tools/dist_train.sh configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py 8 \
#       --cfg-options model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
#
# Pretrained weights are never downloaded: without model.backbone.pretrained (a LOCAL DeiT-S checkpoint) the
# backbone starts from random initialisation, which is not the paper's setting.
#
# After training, the CAM hook writes the CAMs of every train_aug image (<work_dir>/cams) and CSD's source bank
# (<work_dir>/source_bank: tau_fg 0.30 / tau_bg 0.05 masks of the single-label images), the input of
# configs/csd/mctformer_csd_voc.py. CAMs are computed at each image's own size (the patch embedding pads to a
# multiple of 16 internally and the CAM is cropped back); tools/test.py evaluates the seeds on VOC train.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.voc12_cls import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.mctformer_v2_deit_small import *  # noqa: F401,F403
    from .._base_.schedules.schedule_adamw_cosine_60e import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile
from mmpretrain.datasets.transforms import RandomErasing
from mmseg.datasets.transforms import RandomFlip

from csd_mm.datasets.transforms import MaskAwareRandAugment, MaskAwareRandomResizedCrop, PackCAMInputs
from csd_mm.engine.hooks import CAMGenerationHook

crop_size = (224, 224)  # a multiple of the patch size 16: no patch-embed padding in training
# ImageNet mean / std in BGR order (the images are BGR uint8 until the data preprocessor normalises them)
bgr_mean = (103.53, 116.28, 123.675)
bgr_std = (57.375, 57.12, 58.395)
# MCTformer's training augmentation: timm's create_transform(224, is_training=True, auto_augment=
# 'rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1) (its colour jitter
# 0.4 is not applied when an auto-augment policy is set), written with mmpretrain's transforms as mmpretrain's
# DeiT configs write it. The geometric ones are csd_mm's mask-aware subclasses (identical images; gt_seg_map and
# the seg_fields move along, 255 where rotation / shear / translation bring pixels in), so that CSD can derive
# its target and source pipelines from train_pipeline[1:-1].
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=MaskAwareRandomResizedCrop, scale=crop_size, crop_ratio_range=(0.08, 1.0),
         aspect_ratio_range=(3. / 4., 4. / 3.), interpolation='bicubic', backend='pillow'),
    dict(type=RandomFlip, prob=0.5, direction='horizontal'),  # mmcv's, flipping every seg field (mmseg)
    dict(type=MaskAwareRandAugment, policies='timm_increasing', num_policies=2, magnitude_level=9,
         magnitude_std=0.5, total_level=10,
         hparams=dict(pad_val=(104, 116, 124), interpolation='bicubic')),  # fill: the mean, rounded (timm)
    # timm's 'pixel' mode erases with per-pixel N(0, 1) noise after normalisation = N(mean, std) before it
    dict(type=RandomErasing, erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         aspect_range=(0.3, 1 / 0.3), fill_color=bgr_mean, fill_std=bgr_std),
    dict(type=PackCAMInputs),
]
# x 8 GPUs = 64; the last incomplete batch is dropped, as MCTformer's loader does (165 iterations per epoch)
# 10 workers per GPU process, as MCTformer's main.py
train_dataloader.update(batch_size=8, num_workers=10, drop_last=True, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(base_batch_size=64, enable=False)

# After training: CAMs of every train_aug image and the source bank (stage 0 of CSD).
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
