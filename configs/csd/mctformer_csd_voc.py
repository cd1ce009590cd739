# CSD on MCTformer-V2 (Yang et al., BMVC 2023), PASCAL VOC 2012: the MCTformer-V2 baseline
# (configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py: same model, DeiT-S init, augmentation, batch,
# 60 epochs over train_aug) with CSD plugged in, in the paper's reading: every train_aug image is iterated and in
# the classification loss; each multi-label image x_m (4,333 of 10,582) is paired with a COR-drawn single-label
# image x_s, pasted into it by x_s's prior masks, and the dual KL consistency ties the pasted views' score maps
# (the 3x3 conv head's patch CAM before pooling) to x_s's. Both classification losses (class tokens, pooled
# patch CAM) apply to every image. Single-label images cost one forward pass, as in the
# baseline; a paired one costs three passes with gradients (x_m, x_sm^fg, x_sm^bg) and one without (x_s).
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   bash tools/dist_train.sh configs/csd/mctformer_csd_voc.py 8 --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank \
#       model.backbone.pretrained=/path/to/deit_small_patch16_224-cd65a155.pth
#
# Readings and paper ablations (docs/method.md sections 5-6), as --cfg-options; tests/configs/test_csd_ablations.py
# runs each line and checks that it changes what it says:
#   only multi-label images iterated (L_cls on them only):  train_dataloader.dataset.iterate_over=multi_label
#   every image paired, single-label ones too:  train_dataloader.dataset.pair=all
#   copy-paste + dual consistency without COR:  train_dataloader.dataset.sampling=uniform
#   COR diagonal 0 instead of single-label counts:  train_dataloader.dataset.include_self=False
#   lambda_1 grid:  model.head.consistency_loss.lambda_fg=0.001      (and 0, 0.01, 0.1)
#   lambda_2 grid:  model.head.consistency_loss.lambda_bg=1.0      (and 0, 0.001, 0.01, 0.1)
#   saliency background term:  model.head.consistency_loss.bg_mode=saliency
#   paper's literal sum reduction:  model.head.consistency_loss.reduction=sum
#   random blending (soft mask edges):  train_dataloader.dataset.paste_pipeline.0.soft_edge_sigma=3.0
#   classification loss on the fg-pasted view too (label y_m OR y_s):  model.cls_on_pasted=True
#   source view in training mode (own batch statistics, drop-path; csd_mm 0.1):  model.source_pass=train_mode
from mmengine.config import read_base

with read_base():
    from ..mctformer.mctformer_v2_deits_8xb8_60e_voc12aug_224 import *  # noqa: F401,F403
    from .._base_.models.csd_consistency import *  # noqa: F401,F403

from csd_mm.datasets import CSDDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs
from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/mctformer_v2_deits_8xb8_60e_voc12aug_224/source_bank'
# The baseline's dataset, batch and augmentation (CSDDataset derives both views' pipelines from it), wrapped.
train_dataloader = dict(
    train_dataloader,
    dataset=dict(type=CSDDataset, dataset=train_dataloader['dataset'], source_bank=source_bank,
                 paste_pipeline=[dict(type=CopyPaste, soft_edge_sigma=0.0), dict(type=PackCSDInputs)],
                 iterate_over='all', pair='multi_label', sampling='cor', include_self=True, seed=0))
model.update(head=dict(consistency_loss=csd_consistency_loss))
# After training: CAMs of every train_aug image (the seeds, then the pseudo masks); no source bank (stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
