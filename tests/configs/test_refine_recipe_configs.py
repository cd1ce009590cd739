"""The VOC refinement configs (stage 2) follow their official training recipes (docs/method.md section 8) and
read the data from the same layout as every other VOC config (docs/data_preparation.md)."""
from pathlib import Path

from mmengine.config import Config

import csd_mm  # noqa: F401  (mmseg imports mmcv ops that csd_mm.compat provides with mmcv-lite)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def _cfg(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / name))


def test_refinement_configs_read_the_voc_layout_of_the_cam_configs():
    voc_root = _cfg('_base_/datasets/voc12_cls.py').data_root
    for name in ('psa_affinity/aff_resnet50_1xb8_8e_voc12_448.py', 'irn/irn_resnet50_1xb32_3e_voc12aug_512.py'):
        assert _cfg(name).train_dataloader.dataset.data_root == voc_root, name


def test_psa_affinity_config_is_psas_train_aff():
    cfg = _cfg('psa_affinity/aff_resnet50_1xb8_8e_voc12_448.py')
    opt = cfg.optim_wrapper.optimizer
    # PSA's PolyOptimizer(params, lr, weight_decay) puts the weight decay into SGD's positional momentum slot
    assert (opt.lr, opt.momentum, opt.weight_decay) == (0.1, 5e-4, 5e-4)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['head'].lr_mult == 10.0
    assert cfg.train_dataloader.batch_size == 8  # PSA's batch in all: the config's name says one GPU
    assert cfg.train_cfg.max_epochs == 8
    crop = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'].__name__ == 'RandomCrop'][0]
    assert tuple(crop['crop_size']) == (448, 448)
    backbone = cfg.model.backbone
    assert backbone.norm_eval and backbone.norm_cfg.requires_grad is False  # PSA's batch norms are fixed
    data = cfg.train_dataloader.dataset
    assert (data.low_alpha, data.high_alpha) == (4, 32)


def test_irn_boundary_config_is_irns_train_irn():
    cfg = _cfg('irn/irn_resnet50_1xb32_3e_voc12aug_512.py')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.momentum, opt.weight_decay) == (0.1, 1e-4, 1e-4)  # IRN's PolyOptimizer, same quirk
    assert cfg.train_dataloader.batch_size == 32 and cfg.train_cfg.max_epochs == 3
    assert cfg.model.radius == 10
    data = cfg.train_dataloader.dataset
    # IRN's step/cam_to_ir_label.py: thresholds 0.30 / 0.05, label CRF of misc/imutils.crf_inference_label
    assert (data.confident_labels, data.conf_fg, data.conf_bg) == ('irn', 0.30, 0.05)
    assert data.crf_cfg == dict(gt_prob=0.7, n_iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=50, bi_rgb_std=5, bi_w=10)
    assert cfg.train_dataloader.drop_last  # IRN's loader


def test_toy_refinement_configs_keep_their_recipes_and_drop_the_last_batch():
    irn = _cfg('toy/irn_resnet18_1xb8_200it_toy_64x64.py').train_dataloader
    assert (irn.dataset.confident_labels, irn.dataset.conf_fg, irn.dataset.conf_bg) == ('irn', 0.30, 0.05)
    assert irn.dataset.get('crf_cfg') is None  # IRN's label CRF, its kernels not scaled to the toy images
    psa = _cfg('toy/aff_resnet18_1xb8_200it_toy_64x64.py').train_dataloader
    assert psa.dataset.get('confident_labels', 'psa') == 'psa' and (psa.dataset.low_alpha, psa.dataset.high_alpha) \
        == (4, 32)
    assert irn.drop_last and psa.drop_last  # as IRN's and PSA's loaders
