# CSD on the IRN-style ResNet-50 CAM network (Yang et al., BMVC 2023), MS COCO 2014: the COCO baseline
# (configs/resnet50_cam/resnet50_cam_1xb16_5e_coco2014_512.py: same model, init, augmentation, batch and schedule over
# the 82,081 labelled train2014 images) with CSD plugged in, in the paper's reading
# (configs/_base_/datasets/coco2014_csd.py; as configs/csd/resnet50_csd_voc.py): every image in the
# classification loss, each multi-label image paired with a COR-drawn single-label image pasted into it, dual KL
# consistency. COCO has far more multi-label images than VOC
# (tools/analysis/dataset_stats.py prints the split; VOC train_aug: 41 %) and classes with few single-label images;
# COR draws only among classes that have one (docs/method.md, COCO). The paper reports no COCO result: the lambdas are
# its VOC values.
#
# Needs the baseline's source bank (stage 0, written by its CAM hook):
#   bash tools/dist_train.sh configs/csd/resnet50_csd_coco.py 4 --cfg-options \
#       train_dataloader.dataset.source_bank=work_dirs/resnet50_cam_1xb16_5e_coco2014_512/source_bank \
#       train_dataloader.batch_size=4 \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
from mmengine.config import read_base

with read_base():
    from ..resnet50_cam.resnet50_cam_1xb16_5e_coco2014_512 import *  # noqa: F401,F403
    from .._base_.datasets.coco2014_csd import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

source_bank = 'work_dirs/resnet50_cam_1xb16_5e_coco2014_512/source_bank'
train_dataloader.dataset = dict(csd_train_dataset, dataset=train_dataloader.dataset, source_bank=source_bank)
model.head.consistency_loss = csd_consistency_loss
# After training: CAMs of every labelled train2014 image (seeds, pseudo masks); no source bank (stage 0's).
custom_hooks = [dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader)]
