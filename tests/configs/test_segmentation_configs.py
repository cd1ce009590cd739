"""The segmentation-step configs (DeepLab on the pseudo masks): they parse, follow mmseg's recipe, read their
labels from the pseudo-mask folder, and their models build (BatchNorm instead of SyncBN on CPU) and run."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from torch import nn

import csd_mm  # noqa: F401  (mmcv-lite fallbacks before mmseg.models; registers every part)
from mmseg.registry import MODELS

from csd_mm.engine.hooks import SegPredictionExportHook

REPO = Path(__file__).resolve().parents[2]
VOC_CONFIGS = ['deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py',
               'deeplab/deeplabv2_largefov_r101_4xb4_20k_voc12aug_512.py']
TOY_CONFIG = 'toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py'
ALL = VOC_CONFIGS + [TOY_CONFIG]


def _load(name: str) -> Config:
    return Config.fromfile(str(REPO / 'configs' / name))


def _with_bn(cfg: dict) -> dict:
    """The model config with every SyncBN norm_cfg replaced by BatchNorm (CPU, not distributed)."""
    if isinstance(cfg, dict):
        out = ConfigDict({k: _with_bn(v) for k, v in cfg.items()})
        if out.get('type') is nn.SyncBatchNorm:
            out['type'] = nn.BatchNorm2d
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_with_bn(v) for v in cfg)
    return cfg


def _norm_types(module: nn.Module) -> set:
    return {type(m) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


@pytest.mark.parametrize('name', ALL)
def test_config_parses_with_the_runner_keys(name):
    cfg = _load(name)
    assert cfg.default_scope is None
    for key in ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator', 'test_dataloader',
                'test_evaluator', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'test_cfg'):
        assert key in cfg, f'{name} lacks {key}'
    assert cfg.val_evaluator.type.__name__ == 'IoUMetric' and cfg.val_evaluator.iou_metrics == ['mIoU']
    assert cfg.model.type.__name__ == 'EncoderDecoder'
    assert cfg.model.pretrained is None and cfg.model.backbone.init_cfg is None  # nothing downloaded
    hooks = [h for h in cfg.custom_hooks if h.type is SegPredictionExportHook]
    assert len(hooks) == 1


@pytest.mark.parametrize('name', VOC_CONFIGS)
def test_voc_configs_follow_mmseg_voc12aug_20k_recipe(name):
    cfg = _load(name)
    assert cfg.crop_size == (512, 512) and cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.backbone.type.__name__ == 'ResNetV1c' and cfg.model.backbone.depth == 101
    assert cfg.model.backbone.dilations == (1, 1, 2, 4) and cfg.model.backbone.strides == (1, 2, 1, 1)
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.norm_cfg.type is nn.SyncBatchNorm  # as mmseg (the Runner reverts it when not distributed)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type.__name__, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.01, 0.9, 0.0005)
    (poly, ) = cfg.param_scheduler
    assert poly.type.__name__ == 'PolyLR' and (poly.power, poly.eta_min, poly.end) == (0.9, 1e-4, 20000)
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (20000, 2000)
    assert cfg.train_dataloader.batch_size == 4
    train = cfg.train_dataloader.dataset
    assert train.type.__name__ == 'PascalVOCDataset'
    assert train.ann_file == 'ImageSets/Segmentation/train_aug.txt'
    pipeline = [t['type'].__name__ for t in train.pipeline]
    assert pipeline == ['LoadImageFromFile', 'LoadAnnotations', 'RandomResize', 'RandomCrop', 'RandomFlip',
                        'PhotoMetricDistortion', 'Pad', 'PackSegInputs']
    assert train.pipeline[2].scale == (2048, 512) and train.pipeline[2].ratio_range == (0.5, 2.0)
    assert train.pipeline[3].cat_max_ratio == 0.75
    val = cfg.val_dataloader.dataset
    assert val.ann_file == 'ImageSets/Segmentation/val.txt'
    assert val.data_prefix.seg_map_path.startswith('SegmentationClass')  # ground truth, not pseudo masks


def test_deeplab_heads():
    v3p = _load(VOC_CONFIGS[0]).model
    assert v3p.decode_head.type.__name__ == 'DepthwiseSeparableASPPHead'
    assert v3p.decode_head.dilations == (1, 12, 24, 36) and v3p.auxiliary_head.type.__name__ == 'FCNHead'
    v2 = _load(VOC_CONFIGS[1]).model
    assert v2.decode_head.type.__name__ == 'ASPPHead' and v2.decode_head.dilations == (6, 12, 18, 24)
    assert 'auxiliary_head' not in v2  # DeepLab-v2 has none


@pytest.mark.parametrize('name', ALL)
def test_train_labels_are_the_pseudo_masks_and_overridable(name):
    cfg = _load(name)
    prefix = cfg.train_dataloader.dataset.data_prefix
    assert prefix.seg_map_path == cfg.pseudo_mask_dir and 'pseudo_masks' in cfg.pseudo_mask_dir
    assert prefix.img_path == 'JPEGImages'
    cfg.merge_from_dict({'train_dataloader.dataset.data_prefix.seg_map_path': '/elsewhere/masks'})
    assert cfg.train_dataloader.dataset.data_prefix.seg_map_path == '/elsewhere/masks'


def test_toy_pseudo_mask_dir_resolves_to_the_cam_work_dir():
    import os.path as osp
    cfg = _load(TOY_CONFIG)
    resolved = osp.normpath(osp.join(cfg.data_root, cfg.pseudo_mask_dir))  # how mmengine joins data_prefix
    assert resolved == osp.join('work_dirs', 'cam_resnet18_1xb16_300it_toy_64x64', 'pseudo_masks')
    assert cfg.val_dataloader.dataset.data_prefix.seg_map_path == 'SegmentationClassAug'
    assert cfg.model.decode_head.num_classes == len(cfg.metainfo['classes']) == 6


@pytest.mark.parametrize('name', VOC_CONFIGS)
def test_voc_model_builds_with_batchnorm(name):
    model = MODELS.build(_with_bn(_load(name).model))
    assert _norm_types(model) == {nn.BatchNorm2d}
    assert model.decode_head.num_classes == 21
    assert sum(p.numel() for p in model.backbone.parameters()) > 40e6  # ResNet-101, not 50


def test_toy_model_builds_and_predicts_at_input_size():
    cfg = _load(TOY_CONFIG)
    model = MODELS.build(cfg.model)
    assert _norm_types(model) == {nn.BatchNorm2d}
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 64, 64), mode='tensor')
    assert logits.shape == (2, 6, 16, 16)  # DeepLabV3+ decoder at 1/4


def test_toy_images_are_resized_2x_for_training_testing_and_tta(tmp_path):
    """The toy recipe works on 128 px images (2x the 64 px toy): train crops of 64 from 64-256 px, test at
    128 px, TTA at VOC's six ratios of that test scale, so a 10 px bird spans 2-3 cells of the OS8 map."""
    import cv2
    import numpy as np
    from mmcv.transforms import Compose, Resize
    cfg = _load(TOY_CONFIG)
    resize = cfg.train_dataloader.dataset.pipeline[2]
    assert resize.type.__name__ == 'RandomResize' and resize.scale == (512, 128) and resize.ratio_range == (0.5, 2.0)
    assert cfg.train_dataloader.dataset.pipeline[3].crop_size == (64, 64)
    img = tmp_path / 'toy.jpg'
    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    test = Compose(cfg.test_pipeline[:2])(dict(img_path=str(img)))
    assert test['img'].shape[:2] == (128, 128) and test['ori_shape'] == (64, 64)
    scales = [t.scale_factor for t in cfg.tta_pipeline[1].transforms[0] if t.type is Resize]
    assert scales == [2 * r for r in cfg.img_ratios] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
