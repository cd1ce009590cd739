# CSD on the COCO-format toy dataset: the toy COCO baseline (configs/toy/mctformer_tiny_1xb16_300it_toy_coco_64x64.py)
# with CSD plugged in, in the paper's reading, as configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py on the toy
# VOC. 75 of the 80 classes have no image, so COR draws only among the classes with a single-label image.
#
# Needs the baseline's source bank (stage 0); tools/run_pipeline.py --dataset coco sets it.
from mmengine.config import read_base

with read_base():
    from .mctformer_tiny_1xb16_300it_toy_coco_64x64 import *  # noqa: F401,F403
    from .._base_.datasets.toy_coco_csd import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/toy_coco_baseline/source_bank'
train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
model.head.consistency_loss = csd_consistency_loss
# After training: CAMs of every training image (no source bank: that is stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
