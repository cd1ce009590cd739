# CSD on the COCO-format toy dataset: the toy COCO baseline (configs/toy/mctformer_tiny_1xb16_300it_toy_coco_64x64.py)
# with CSD plugged in, in the paper's reading, as configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py on the toy
# VOC. 75 of the 80 classes have no image, so COR draws only among the classes with a single-label image.
#
# Needs the baseline's source bank (stage 0); tools/run_pipeline.py --dataset coco sets it.
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
    from .mctformer_tiny_1xb16_300it_toy_coco_64x64 import *  # noqa: F401,F403
    from .._base_.models.csd_consistency import *  # noqa: F401,F403

from csd_mm.datasets import CSDDataset
from csd_mm.datasets.transforms import CopyPaste, PackCSDInputs
from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/toy_coco_baseline/source_bank'
# The baseline's dataset, batch and augmentation (CSDDataset derives both views' pipelines from it), wrapped.
train_dataloader = dict(
    train_dataloader,
    dataset=dict(type=CSDDataset, dataset=train_dataloader['dataset'], source_bank=source_bank,
                 paste_pipeline=[dict(type=CopyPaste, soft_edge_sigma=0.0), dict(type=PackCSDInputs)],
                 iterate_over='all', pair='multi_label', sampling='cor', include_self=True, seed=0))
model.update(head=dict(consistency_loss=csd_consistency_loss))
# After training: CAMs of every training image (no source bank: that is stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
