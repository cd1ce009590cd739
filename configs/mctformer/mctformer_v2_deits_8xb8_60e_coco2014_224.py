# MCTformer-V2 (Xu et al., CVPR 2022) on MS COCO 2014, the recipe of MCTformer's run_coco.sh: DeiT-S/16 with 80
# class tokens, batch 64, the defaults of its main.py (60 epochs, 224 crops, AdamW lr 5e-4 * 64 / 512, weight
# decay 0.05, timm's cosine with 5 warm-up epochs, drop path 0.1, timm's RandAugment / random erasing), the same
# settings as on VOC (configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py, whose pipeline this config
# reuses); CAMs at scale 1.0 + flip from the last 3 blocks with patch-affinity refinement (run_coco.sh:
# --scales 1.0 --layer-index 3 --patch-attn-refine). Seeds are evaluated on val2014
# (configs/_base_/datasets/coco2014_cls.py).
#
# Differences from run_coco.sh: MCTformer trains on every image of its train list (82,783, with the 702
# unlabelled ones as all-negative samples); here the 82,081 labelled images (ImageSets/train2014_cls.txt). Its
# 8xb8 split of the batch of 64 is as on VOC (no BatchNorm: the split changes only the data order).
#
#   bash tools/dist_train.sh configs/mctformer/mctformer_v2_deits_8xb8_60e_coco2014_224.py 8 \
#       --cfg-options model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
#
# After training, the CAM hook writes the CAMs of every labelled train2014 image and the source bank, the input
# of configs/csd/mctformer_csd_coco.py.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco2014_cls import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.mctformer_v2_deit_small import *  # noqa: F401,F403
    from .._base_.schedules.schedule_adamw_cosine_60e import *  # noqa: F401,F403
    from .mctformer_v2_deits_8xb8_60e_voc12aug_224 import auto_scale_lr, crop_size, train_pipeline  # noqa: F401

from csd_mm.engine.hooks import CAMGenerationHook

num_classes = 80
model.update(backbone=dict(num_classes=num_classes), head=dict(num_classes=num_classes))
# x 8 GPUs = 64; the last incomplete batch is dropped, as MCTformer's loader does (1,282 iterations per epoch)
# 10 workers per GPU process, as MCTformer's main.py
train_dataloader.update(batch_size=8, num_workers=10, drop_last=True, dataset=dict(pipeline=train_pipeline))

custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
