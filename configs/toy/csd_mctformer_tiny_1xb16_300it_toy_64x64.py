# CSD on MCTformer-V2, toy dataset (Yang et al., BMVC 2023): the tiny MCTformer toy baseline
# (configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py: same model, init, augmentation, schedule and budget) with
# CSD plugged in (configs/_base_/datasets/toy_voc_csd.py, the twin of voc12_csd.py: the paper's reading, and the
# readings and ablations as --cfg-options). The dual KL consistency ties the pasted views' score maps (the 3x3
# conv head's patch CAM) to the source's. Single-label images cost one forward pass, as in the baseline.
#
# Needs the baseline's source bank (stage 0); tools/run_pipeline.py sets it:
#   python tools/train.py configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py \
#       --cfg-options train_dataloader.dataset.source_bank=work_dirs/toy_mctformer/source_bank
from mmengine.config import read_base

with read_base():
    from .mctformer_tiny_1xb16_300it_toy_64x64 import *  # noqa: F401,F403
    from .._base_.datasets.toy_voc_csd import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/toy_mctformer/source_bank'
train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
model.head.consistency_loss = csd_consistency_loss
# After training: CAMs of every training image (no source bank: that is stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
