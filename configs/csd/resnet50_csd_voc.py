# CSD on IRN's ResNet-50 CAM network (Yang et al., BMVC 2023), PASCAL VOC 2012: the IRN baseline
# (configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py: same model, ImageNet init, augmentation, batch 16,
# 5 epochs over train_aug) with CSD plugged in (configs/_base_/datasets/voc12_csd.py: the paper's reading, and
# the readings and ablations as --cfg-options). The dual KL consistency ties the pasted views' score maps (the
# 1x1 classifier's map before pooling) to the source's. Single-label images cost one forward pass, as in the
# baseline; a paired one costs three passes with gradients (x_m, x_sm^fg, x_sm^bg) and one without (x_s).
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   python tools/train.py configs/csd/resnet50_csd_voc.py --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/resnet50_cam_1xb16_5e_voc12aug_512/source_bank \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
from mmengine.config import read_base

with read_base():
    from ..resnet50_cam.resnet50_cam_1xb16_5e_voc12aug_512 import *  # noqa: F401,F403
    from .._base_.datasets.voc12_csd import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/resnet50_cam_1xb16_5e_voc12aug_512/source_bank'
train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
model.head.consistency_loss = csd_consistency_loss
# After training: CAMs of every train_aug image (the seeds, then the pseudo masks); no source bank (stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
