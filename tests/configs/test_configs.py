"""Every config under configs/ parses with mmengine and its model builds (CPU, no pretrained weights)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import csd_mm  # noqa: F401  (registers every part)
from mmseg.registry import MODELS

from csd_mm.models.classifiers.base_cam_classifier import BaseCAMClassifier
from csd_mm.registry import REFINERS

REPO = Path(__file__).resolve().parents[2]
ALL_CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)
# refiner-only configs (stage 2 without a network to train) define `refiner` and nothing else
REFINER_CONFIGS = [p for p in ALL_CONFIGS if p.stem.startswith('crf_')]
CONFIGS = [p for p in ALL_CONFIGS if p not in REFINER_CONFIGS]
CSD_CONFIGS = [p for p in CONFIGS if p.name.startswith('csd_') or p.parent.name == 'csd']
assert len(CSD_CONFIGS) >= 4


def _id(path: Path) -> str:
    return str(path.relative_to(REPO / 'configs'))


def test_the_expected_configs_exist():
    names = {_id(p) for p in CONFIGS}
    for expected in ('mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py', 'csd/mctformer_csd_voc.py',
                     'csd/resnet50_csd_voc.py', 'resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py',
                     'toy/mctformer_tiny_1xb16_300it_toy_64x64.py',
                     'toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py'):
        assert expected in names


@pytest.mark.parametrize('path', CONFIGS, ids=_id)
def test_config_parses_and_model_builds(path):
    assert path.stem.isidentifier(), f'{path}: config names must be valid module names (children import them)'
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope is None
    for key in ('model', 'train_dataloader', 'optim_wrapper', 'train_cfg'):
        assert key in cfg, f'{path} lacks {key}'
    backbone = cfg.model.get('backbone', {})
    assert not backbone.get('pretrained') and not backbone.get('init_cfg'), 'no pretrained weights by default'
    model = MODELS.build(cfg.model)
    if not isinstance(model, BaseCAMClassifier):
        return
    # CAM classifiers: test loop + seed metric, class count of the dataset
    for key in ('test_dataloader', 'test_evaluator', 'cam_dataloader'):
        assert key in cfg, f'{path} lacks {key}'
    num_classes = len(cfg.get('metainfo', {}).get('classes', ('background', ) + ('x', ) * 20)) - 1
    assert model.num_classes == num_classes
    if 'toy' in path.parts:  # the toy models are small enough for a forward pass here
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 64, 64), mode='tensor')
        assert out.shape[:2] == (1, num_classes) and out.shape[-1] == 8


@pytest.mark.parametrize('path', REFINER_CONFIGS, ids=_id)
def test_refiner_config_builds_a_refiner(path):
    import numpy as np
    assert path.stem.isidentifier()
    cfg = Config.fromfile(str(path))
    refiner = REFINERS.build(dict(cfg.refiner.to_dict(), bg_threshold=0.3))
    img = np.zeros((16, 16, 3), np.uint8)
    img[4:12, 4:12] = 200
    cam = np.zeros((1, 16, 16), np.float32)
    cam[0, 4:12, 4:12] = 0.9
    mask = refiner(img, cam, np.array([2]))
    assert mask.dtype == np.uint8 and mask.shape == (16, 16)
    assert mask[8, 8] == 3 and mask[0, 0] == 0  # keys + 1 inside the object, background outside


@pytest.mark.parametrize('path', CSD_CONFIGS, ids=_id)
def test_csd_configs_wrap_the_data_and_set_the_paper_losses(path):
    cfg = Config.fromfile(str(path))
    dataset = cfg.train_dataloader.dataset
    assert dataset.type.__name__ == 'CSDDataset'
    assert dataset.source_bank == cfg.source_bank
    assert dataset.sampling == 'cor'
    loss = cfg.model.head.consistency_loss
    assert (loss.lambda_fg, loss.lambda_bg) == (0.01, 0.1)
    # the source bank is overridable from the command line, as users do
    cfg.merge_from_dict({'train_dataloader.dataset.source_bank': '/elsewhere/bank'})
    assert cfg.train_dataloader.dataset.source_bank == '/elsewhere/bank'


@pytest.mark.parametrize('csd_name, base_name', [
    ('csd/mctformer_csd_voc.py', 'mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py'),
    ('csd/resnet50_csd_voc.py', 'resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py'),
    ('toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py', 'toy/mctformer_tiny_1xb16_300it_toy_64x64.py'),
    ('toy/csd_resnet18_1xb16_300it_toy_64x64.py', 'toy/cam_resnet18_1xb16_300it_toy_64x64.py'),
    ('csd/mctformer_csd_coco.py', 'mctformer/mctformer_v2_deits_8xb8_60e_coco2014_224.py'),
    ('csd/resnet50_csd_coco.py', 'resnet50_cam/resnet50_cam_1xb16_5e_coco2014_512.py'),
    ('toy/csd_mctformer_tiny_1xb16_300it_toy_coco_64x64.py', 'toy/mctformer_tiny_1xb16_300it_toy_coco_64x64.py'),
    ('toy/csd_resnet18_1xb16_300it_toy_coco_64x64.py', 'toy/cam_resnet18_1xb16_300it_toy_coco_64x64.py'),
])
def test_csd_uses_its_baselines_model_and_schedule(csd_name, base_name):
    csd = Config.fromfile(str(REPO / 'configs' / csd_name))
    base = Config.fromfile(str(REPO / 'configs' / base_name))
    csd_model = csd.to_dict()['model']
    assert csd_model['head'].pop('consistency_loss')
    assert csd_model == base.to_dict()['model']
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert csd.to_dict()[key] == base.to_dict()[key], key
    assert csd.train_dataloader.batch_size == base.train_dataloader.batch_size
    # the baseline writes the source bank, CSD does not
    assert 'source_bank' in base.custom_hooks[0] and 'source_bank' not in csd.custom_hooks[0]


def test_mctformer_voc_baseline_follows_the_paper():
    cfg = Config.fromfile(str(REPO / 'configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py'))
    assert cfg.crop_size == (224, 224)
    assert cfg.train_dataloader.batch_size * 8 == 64  # MCTformer's run.sh: --batch-size 64 (one process)
    assert cfg.auto_scale_lr.base_batch_size == 64
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.lr == pytest.approx(5e-4 * 64 / 512)
    assert (optimizer.weight_decay, optimizer.eps, tuple(optimizer.betas)) == (0.05, 1e-8, (0.9, 0.999))
    paramwise = cfg.optim_wrapper.paramwise_cfg  # timm: no decay on 1-D params, biases, cls_token, pos_embed
    assert paramwise.flat_decay_mult == paramwise.bias_decay_mult == paramwise.norm_decay_mult == 0.0
    assert {k: v.decay_mult for k, v in paramwise.custom_keys.items()} == {'cls_token': 0.0, 'pos_embed': 0.0}
    assert cfg.train_cfg.max_epochs == 60
    (scheduler, ) = cfg.param_scheduler  # timm's CosineLRScheduler, stepped once per epoch
    assert scheduler.type.__name__ == 'TimmCosineLR' and scheduler.by_epoch
    assert (scheduler.t_initial, scheduler.warmup_t, scheduler.warmup_lr_init, scheduler.lr_min) == (60, 5, 1e-6, 1e-5)
    assert cfg.model.backbone.final_norm is False  # MCTformer-V2: no final LayerNorm
    pipeline = [t['type'].__name__ for t in cfg.train_dataloader.dataset.pipeline]
    assert pipeline == ['LoadImageFromFile', 'MaskAwareRandomResizedCrop', 'RandomFlip', 'MaskAwareRandAugment',
                        'RandomErasing', 'PackCAMInputs']  # timm's; tests/datasets/transforms checks the details
    # CAMs at each image's own size: no resize in the test / CAM pipelines
    for loader in (cfg.test_dataloader, cfg.cam_dataloader):
        assert 'Resize' not in ' '.join(t['type'].__name__ for t in loader.dataset.pipeline)
    bank = cfg.custom_hooks[0].source_bank
    assert (bank.tau_fg, bank.tau_bg) == (0.30, 0.05)


def test_coco_config_classes_are_the_dataset_module_s():
    """The COCO base config spells out the 80 classes (a pure-Python config cannot concatenate an imported
    tuple); they must stay the converter's and the pipeline's."""
    from csd_mm.datasets.coco import COCO_CLASSES
    for name in ('coco2014_cls.py', 'toy_coco.py'):
        cfg = Config.fromfile(str(REPO / 'configs/_base_/datasets' / name))
        assert tuple(cfg.metainfo['classes']) == ('background', ) + tuple(COCO_CLASSES), name
