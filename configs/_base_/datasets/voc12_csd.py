# The CSD base (Yang et al., BMVC 2023) on PASCAL VOC 2012: what every CSD config adds to its baseline. A CSD
# config imports its baseline, then this file, and wraps the baseline's training dataset (its images, batch,
# augmentation and crop: CSDDataset derives both views' pipelines from the wrapped dataset's, so no crop size is
# set here) with `csd_train_dataset`, and puts `csd_consistency_loss` on the CAM head:
#   train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
#   model.head.consistency_loss = csd_consistency_loss
# The paper's reading: every training image is iterated and in the classification loss; each multi-label image
# x_m is paired with a COR-drawn single-label image x_s from the baseline's source bank, pasted into it by x_s's
# prior masks (hard edges), and the dual KL consistency ties the pasted views' score maps to x_s's.
#
# Readings and paper ablations (docs/method.md sections 5-6), as --cfg-options on any CSD config;
# tests/configs/test_csd_ablations.py runs each line and checks that it changes what it says:
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
    from ..models.csd_consistency import *  # noqa: F401,F403

from csd_mm.datasets import CSDDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs

csd_train_dataset = dict(
    type=CSDDataset,
    source_bank=None,  # the baseline run's <work_dir>/source_bank (stage 0); the CSD config sets it
    paste_pipeline=[dict(type=CopyPaste, soft_edge_sigma=0.0), dict(type=PackCSDInputs)],
    iterate_over='all',  # every image is an item, in L_cls
    pair='multi_label',  # only multi-label images get a source image and the consistency terms
    sampling='cor',
    include_self=True,
    seed=0)
