# The toy MCTformer-V2 (configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py: model, schedule, budget) on the
# COCO-format toy dataset (configs/_base_/datasets/toy_coco.py): 80 class tokens, of which the toy scenes use 5.
# tools/run_pipeline.py --dataset coco --models mctformer runs it.
from mmengine.config import read_base

with read_base():
    from .mctformer_tiny_1xb16_300it_toy_64x64 import *  # noqa: F401,F403
    from .._base_.datasets.toy_coco import *  # noqa: F401,F403  (after the model: its datasets replace toy VOC's)

from csd_mm.engine.hooks import CAMGenerationHook

num_classes = 80
model.update(backbone=dict(num_classes=num_classes), head=dict(num_classes=num_classes))
custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
