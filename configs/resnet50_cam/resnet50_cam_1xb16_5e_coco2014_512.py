# IRN-style ResNet-50 CAM network on MS COCO 2014 (about 82,081 labelled train2014 images, 80 classes): the ResNet-50
# baseline (stage 0) of CSD (Yang et al., BMVC 2023) on COCO. IRN (Ahn et al., CVPR 2019) publishes no COCO
# recipe; this config reads it as the IRN-on-COCO re-implementations do: IRN's VOC hyper-parameters unchanged
# (configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py: output stride 16, stem + layers 1-2 frozen, long
# side 320-640, flip, random 512 crop-or-pad, batch 16, SGD lr 0.1 (x10 head), weight decay 1e-4, IRN's
# momentum 1e-4, poly 0.9, 5 epochs = 5 x 5,130 iterations; CAM scales (1.0, 0.5, 1.5, 2.0) + flip) with 80
# classes. docs/method.md section 12 (COCO) states this reading; seeds are evaluated on val2014 (about 40,137
# labelled images).
#
#   bash tools/dist_train.sh configs/resnet50_cam/resnet50_cam_1xb16_5e_coco2014_512.py 4 --cfg-options \
#       train_dataloader.batch_size=4 \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=/path/to/resnet50.pth
#
# (batch_size is per GPU: 4 GPUs x 4 = IRN's batch 16; on one GPU leave the config's 16.)
#
# After training, the CAM hook writes the CAMs of every labelled train2014 image and CSD's source bank (the
# single-label images, tau_fg 0.30 / tau_bg 0.05), the input of configs/csd/resnet50_csd_coco.py.
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco2014_cls import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.resnet50_cam import *  # noqa: F401,F403
    from .._base_.schedules.schedule_sgd_poly_5e import *  # noqa: F401,F403

from csd_mm.engine.hooks import CAMGenerationHook

num_classes = 80
model.update(head=dict(num_classes=num_classes))
train_dataloader.update(drop_last=True)  # IRN: 82,081 // 16 = 5,130 iterations per epoch

custom_hooks = [
    dict(type=CAMGenerationHook, out_dir='cams', dataloader=cam_dataloader,
         source_bank=dict(out_dir='source_bank', tau_fg=0.30, tau_bg=0.05)),
]
