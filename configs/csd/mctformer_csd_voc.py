# CSD on MCTformer-V2 (Yang et al., BMVC 2023), PASCAL VOC 2012: the MCTformer-V2 baseline
# (configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py: same model, DeiT-S init, augmentation, batch,
# 60 epochs over train_aug) with CSD plugged in (configs/_base_/datasets/voc12_csd.py: the paper's reading, and
# the readings and ablations as --cfg-options). The dual KL consistency ties the pasted views' score maps (the
# 3x3 conv head's patch CAM before pooling) to the source's; both classification losses (class tokens, pooled
# patch CAM) apply to every image. Single-label images cost one forward pass, as in the baseline; a paired one
# costs three passes with gradients (x_m, x_sm^fg, x_sm^bg) and one without (x_s).
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   bash tools/dist_train.sh configs/csd/mctformer_csd_voc.py 8 --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank \
#       model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
from mmengine.config import read_base

with read_base():
    from ..mctformer.mctformer_v2_deits_8xb8_60e_voc12aug_224 import *  # noqa: F401,F403
    from .._base_.datasets.voc12_csd import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank'
train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
model.head.consistency_loss = csd_consistency_loss
# After training: CAMs of every train_aug image (the seeds, then the pseudo masks); no source bank (stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
