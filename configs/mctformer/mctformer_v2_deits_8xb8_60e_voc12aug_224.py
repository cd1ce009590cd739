# MCTformer-V2 (Xu et al., CVPR 2022) on PASCAL VOC 2012 train_aug: the transformer baseline (stage 0) of CSD
# (Yang et al., BMVC 2023). DeiT-S/16, 224 crops, batch 64 in total (8 GPUs x 8), AdamW lr 5e-4 * 64 / 512,
# weight decay 0.05, 5 warm-up epochs then cosine, 60 epochs.
#
#   bash tools/dist_train.sh configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py 8 \
#       --cfg-options model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
#
# Pretrained weights are never downloaded: without model.backbone.pretrained (a LOCAL DeiT-S checkpoint) the
# backbone starts from random initialisation, which is not the paper's setting. On another total batch size
# set auto_scale_lr.enable=True (the lr is scaled linearly from base_batch_size 64, as MCTformer's rule).
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

from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmseg.datasets.transforms import PhotoMetricDistortion, RandomCrop

from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.engine.hooks import CAMGenerationHook

crop_size = (224, 224)  # a multiple of the patch size 16: no patch-embed padding in training
# MCTformer's training augmentation: random rescale, flip, colour jitter, random 224 crop (zero-padded when the
# rescaled image is smaller).
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(448, 448), ratio_range=(0.5, 1.0), keep_ratio=True),  # long side 224-448
    dict(type=RandomFlip, prob=0.5),
    dict(type=PhotoMetricDistortion),
    dict(type=RandomCrop, crop_size=crop_size),
    dict(type=Pad, size=crop_size, pad_val=dict(img=0, seg=255)),
    dict(type=PackCAMInputs),
]
train_dataloader.update(batch_size=8, dataset=dict(pipeline=train_pipeline))  # x 8 GPUs = 64
auto_scale_lr = dict(base_batch_size=64, enable=False)

# After training: CAMs of every train_aug image and the source bank (stage 0 of CSD).
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
