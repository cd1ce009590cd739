# DeepLabV3+ ResNetV1c-101-d8 trained on the PSEUDO MASKS of COCO 2014 train (82,081 labelled images) and
# evaluated on val2014 (40,504) with mmseg's IoUMetric over 81 classes (background + 80): the VOC config
# (configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py: 4 GPUs x 4 images, 512 crops, SGD lr 0.01,
# poly) with mmseg's COCO schedule length (80k iterations, as its COCO-Stuff164k DeepLabV3+ configs; COCO has
# 8x VOC's training images), checkpoints / validation every 8k.
#
#   bash tools/dist_train.sh configs/deeplab/deeplabv3plus_r101_d8_4xb4_80k_coco2014_512.py 4 --cfg-options \
#       train_dataloader.dataset.data_prefix.seg_map_path=/abs/path/to/pseudo_masks \
#       model.pretrained=/path/to/resnet101_v1c.pth
#   python tools/test.py configs/deeplab/deeplabv3plus_r101_d8_4xb4_80k_coco2014_512.py CKPT
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco2014_pseudo_masks import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.schedules.schedule_20k import *  # noqa: F401,F403
    # the VOC config's DeepLabV3+ R101-d8 (deeplabv3plus_r50_d8.py at depth 101, 512x512 batches); 81 classes below
    from .deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512 import data_preprocessor, model, norm_cfg, tta_model

num_classes = 81  # background + 80 COCO classes
max_iters = 80000
model.update(decode_head=dict(num_classes=num_classes), auxiliary_head=dict(num_classes=num_classes))
param_scheduler = [dict(param_scheduler[0], end=max_iters)]
train_cfg.update(max_iters=max_iters, val_interval=8000)
default_hooks.update(checkpoint=dict(checkpoint_hook, interval=8000))
