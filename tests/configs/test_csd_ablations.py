"""Every reading / ablation the CSD base documents in its header changes what it says it changes.

The option lines are read from the CSD base that every CSD config imports (``configs/_base_/datasets/
voc12_csd.py``, whose toy twin imports it; ``#   description:  key=value``), applied with
``--cfg-options`` semantics (``Config.merge_from_dict``) to the toy CSD config, and the built dataset / model is
compared with the default one on a real batch of the toy data (real pipeline, real source bank). A documented
option without a check here fails the test, so the comments cannot drift into no-ops.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate

import csd_mm  # noqa: F401
from csd_mm.datasets import ImageLevelDataset, build_source_bank, make_toy_voc
from mmseg.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[2]
CSD_CONFIGS = sorted((REPO / 'configs/csd').glob('*.py')) + sorted((REPO / 'configs/toy').glob('csd_*.py'))
TOY_CFG = REPO / 'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'
CSD_BASE = REPO / 'configs/_base_/datasets/voc12_csd.py'
OPTION = re.compile(r'^#\s+[^:]+:\s+([\w.]+=\S+)', re.M)


def documented_options(path: Path):
    header = path.read_text().split('from mmengine.config import read_base')[0]
    return OPTION.findall(header)


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('ablations')
    summary = make_toy_voc(str(root / 'toy_voc'), num_train=40, num_val=2, seed=2)
    base = ImageLevelDataset(ann_file='ImageSets/Segmentation/train_aug.txt', data_root=str(root / 'toy_voc'),
                             label_file='cls_labels.npy', metainfo=dict(classes=tuple(summary['classes'])))
    ids = [base.get_data_info(i)['img_id'] for i in range(len(base))]
    labels = np.stack([base.get_data_info(i)['gt_label'] for i in range(len(base))])
    build_source_bank(str(root / 'bank'), ids, labels, pseudo_mask_dir=str(root / 'toy_voc/SegmentationClassAug'),
                      progress=False)
    return root


def _cfg(toy, option=None):
    cfg = Config.fromfile(str(TOY_CFG))
    options = {'train_dataloader.dataset.dataset.data_root': str(toy / 'toy_voc'),
               'train_dataloader.dataset.source_bank': str(toy / 'bank')}
    if option is not None:
        key, value = option.split('=', 1)
        options[key] = value
    cfg.merge_from_dict(_parsed(options))
    return cfg


def _parsed(options):
    """Values parsed as ``--cfg-options`` parses them (mmengine's DictAction)."""
    return {k: DictAction._parse_iterable(v) if isinstance(v, str) else v for k, v in options.items()}


def _dataset(cfg):
    return DATASETS.build(cfg.train_dataloader.dataset)


def _losses(cfg, batch_seed=0, steps=1):
    """The losses of the toy model (fixed init) on the first 12 items of the dataset, after ``steps`` steps."""
    dataset = _dataset(cfg)
    np.random.seed(batch_seed)
    torch.manual_seed(batch_seed)
    batch = pseudo_collate([dataset[i] for i in range(12)])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    for _ in range(steps):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
    return model, {k: float(v.detach()) for k, v in losses.items()}


def _paste_outputs(cfg):
    dataset = _dataset(cfg)
    outs = []
    for i in range(len(dataset)):
        if dataset.is_paired(i):
            np.random.seed(i)
            outs.append(dataset[i]['inputs'][2].clone())  # the fg-pasted view
    return torch.stack(outs)


def _drawn_classes(cfg):
    dataset = _dataset(cfg)
    multi = [i for i in range(len(dataset)) if dataset.get_labels()[i].sum() >= 2]
    return np.bincount([dataset._bank_entries[dataset.draw_source(i)]['class'] for i in multi for _ in range(50)],
                       minlength=dataset.get_labels().shape[1])


# option -> check(default_cfg, option_cfg) asserting the option's effect
def _check_iterate(default, option):
    a, b = _dataset(default), _dataset(option)
    assert len(b) < len(a) and all(lab.sum() >= 2 for lab in b.get_labels())


def _check_pair(default, option):
    a, b = _dataset(default), _dataset(option)
    assert sum(map(a.is_paired, range(len(a)))) < len(a) == len(b) == sum(map(b.is_paired, range(len(b))))


def _check_sampling(default, option):
    cor, uniform = _drawn_classes(default), _drawn_classes(option)
    assert (uniform > 0).sum() > (cor > 0).sum()  # uniform draws classes COR gives weight 0 for these targets


def _check_include_self(default, option):
    assert not np.allclose(_dataset(default)._sampler.probs, _dataset(option)._sampler.probs)


def _check_loss_ratio(key, new, old):
    def check(default, option):
        _, a = _losses(default)
        _, b = _losses(option)
        assert a[key] > 0
        np.testing.assert_allclose(b[key], a[key] * new / old, rtol=1e-4)
        assert b['loss_cls'] == pytest.approx(a['loss_cls'], rel=1e-5)
    return check


def _check_changes(key):
    def check(default, option):
        _, a = _losses(default)
        _, b = _losses(option)
        assert a[key] > 0 and abs(b[key] - a[key]) > 1e-3 * a[key]
    return check


def _check_soft_edges(default, option):
    hard, soft = _paste_outputs(default), _paste_outputs(option)
    assert (hard != soft).any()


def _check_cls_on_pasted(default, option):
    _, a = _losses(default)
    _, b = _losses(option)
    assert 'loss_cls_pasted' not in a and b['loss_cls_pasted'] > 0


def _check_source_pass(default, option):
    # the toy ResNet's batch norms train: the source pass then updates the running statistics a second time
    a, _ = _losses(default)
    b, _ = _losses(option)
    assert int(b.backbone.bn1.num_batches_tracked) == int(a.backbone.bn1.num_batches_tracked) + 1


CHECKS = {
    'train_dataloader.dataset.iterate_over': _check_iterate,
    'train_dataloader.dataset.pair': _check_pair,
    'train_dataloader.dataset.sampling': _check_sampling,
    'train_dataloader.dataset.include_self': _check_include_self,
    'model.head.consistency_loss.lambda_fg': lambda d, o, v: _check_loss_ratio('loss_fg', float(v), 0.01)(d, o),
    'model.head.consistency_loss.lambda_bg': lambda d, o, v: _check_loss_ratio('loss_bg', float(v), 0.1)(d, o),
    'model.head.consistency_loss.bg_mode': _check_changes('loss_bg'),
    'model.head.consistency_loss.reduction': _check_changes('loss_fg'),
    'train_dataloader.dataset.paste_pipeline.0.soft_edge_sigma': _check_soft_edges,
    'model.cls_on_pasted': _check_cls_on_pasted,
    'model.source_pass': _check_source_pass,
}


def test_every_documented_option_has_a_check():
    assert len(CSD_CONFIGS) == 8  # VOC, COCO, toy VOC, toy COCO; for each CAM network
    options = documented_options(CSD_BASE)
    assert len(options) == len(CHECKS)
    for option in options:
        assert option.split('=')[0] in CHECKS, f'documented option {option} has no check'


@pytest.mark.parametrize('path', CSD_CONFIGS, ids=lambda p: p.name)
def test_every_csd_config_wraps_its_dataset_with_the_documented_base(path):
    cfg = Config.fromfile(str(path))
    wrapper = {k: v for k, v in cfg.train_dataloader.dataset.to_dict().items() if k not in ('dataset', 'source_bank')}
    base = Config.fromfile(str(CSD_BASE)).csd_train_dataset.to_dict()
    base.pop('source_bank')
    assert wrapper == base
    assert cfg.train_dataloader.dataset.source_bank == cfg.source_bank


@pytest.mark.parametrize('path', CSD_CONFIGS, ids=lambda p: p.name)
def test_documented_options_apply_to_every_csd_config(path):
    for option in documented_options(CSD_BASE):
        key, value = option.split('=', 1)
        cfg = Config.fromfile(str(path))
        before = _node(cfg, key)
        cfg.merge_from_dict(_parsed({key: value}))
        after = _node(cfg, key)
        assert str(after) == str(_parsed({key: value})[key]) and str(after) != str(before), (path.name, option)


def _node(cfg, key):
    """The value at a dotted ``--cfg-options`` key (list indices as numbers); None where it is not set."""
    node = cfg
    for part in key.split('.'):
        if part.isdigit():
            node = node[int(part)]
        elif part in node:
            node = node[part]
        else:
            return None
    return node


@pytest.mark.parametrize('option', documented_options(CSD_BASE))
def test_documented_option_changes_what_it_says(toy, option):
    key, value = option.split('=', 1)
    check = CHECKS[key]
    default, changed = _cfg(toy), _cfg(toy, option)
    if key.endswith(('lambda_fg', 'lambda_bg')):
        check(default, changed, value)
    else:
        check(default, changed)
