"""The VOC refinement configs (stage 2) follow their official training recipes (docs/method.md section 8) and
read the data from the same layout as every other VOC config (docs/data_preparation.md)."""
from pathlib import Path

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config

import csd_mm  # noqa: F401  (mmseg imports mmcv ops that csd_mm.compat provides with mmcv-lite)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
PSA = 'psa_affinity/aff_resnet50_1xb8_5e_voc12_448.py'


def _cfg(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / name))


def test_refinement_configs_read_the_voc_layout_of_the_cam_configs():
    voc_root = _cfg('_base_/datasets/voc12_cls.py').data_root
    for name in (PSA, 'irn/irn_resnet50_1xb32_3e_voc12aug_512.py'):
        assert _cfg(name).train_dataloader.dataset.data_root == voc_root, name


def test_psa_affinity_config_is_mctformers_train_aff_and_infer_aff():
    cfg = _cfg(PSA)
    opt = cfg.optim_wrapper.optimizer
    # MCTformer's lr (PSA: 0.1); PSA's PolyOptimizer(params, lr, weight_decay) puts the weight decay into SGD's
    # positional momentum slot
    assert (opt.lr, opt.momentum, opt.weight_decay) == (0.01, 5e-4, 5e-4)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['head'].lr_mult == 10.0
    assert cfg.train_dataloader.batch_size == 8  # PSA's batch in all: the config's name says one GPU
    assert cfg.train_dataloader.drop_last is True
    assert cfg.train_cfg.max_epochs == 5  # MCTformer's (PSA: 8)
    backbone = cfg.model.backbone
    assert backbone.norm_eval and backbone.norm_cfg.requires_grad is False  # PSA's batch norms are fixed
    data = cfg.train_dataloader.dataset
    assert (data.low_alpha, data.high_alpha) == (1, 12)  # run_psa.sh's crf_1 / crf_12 (PSA: 4 / 32)
    assert not data.get('crf_cfg')  # dense_crf's defaults: PSA's / MCTformer's crf_inference kernels
    refiner = cfg.refiner
    assert (refiner.beta, refiner.logt, refiner.bg_threshold) == (8, 6, 0.39)  # infer_aff.py: constant --bg_thr
    assert refiner.checkpoint.endswith('aff_resnet50_1xb8_5e_voc12_448/epoch_5.pth')


def _psa_sample(tmp_path, h=300, w=500):
    """A VOC-sized image, shorter than PSA's 448 crop in height and longer in width, whose pixels take one of 4
    non-black colours at random (``idx``), and a label map of three vertical bands 1 / 2 / 3 (no 255), written
    as the files the config's loaders read."""
    rng = np.random.default_rng(0)
    palette = np.array([[200, 30, 40], [20, 180, 60], [90, 90, 220], [240, 240, 120]], np.uint8)
    idx = rng.integers(0, 4, size=(h, w))
    label = (np.arange(w)[None].repeat(h, 0) * 3 // w + 1).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'img.png'), palette[idx])
    cv2.imwrite(str(tmp_path / 'seg.png'), label)
    return dict(img_path=str(tmp_path / 'img.png'), seg_map_path=str(tmp_path / 'seg.png'), reduce_zero_label=False,
                seg_fields=[]), palette[idx], idx, label


def test_psa_affinity_train_pipeline_is_psas_augmentation(tmp_path):
    """PSA's train_aff.py: no rescale, ColorJitter, a 448 crop that puts a short side at a random offset in a
    black container (label 255), a horizontal flip."""
    pipeline = _cfg(PSA).train_dataloader.dataset.pipeline
    assert [t['type'].__name__ for t in pipeline] == ['LoadImageFromFile', 'LoadAnnotations', 'ColorJitter',
                                                      'RandomCropOrPad', 'RandomFlip', 'PackSegInputs']
    jitter = pipeline[2]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (0.3, 0.3, 0.3, 0.1)
    results, img, idx, label = _psa_sample(tmp_path)
    without_jitter = Compose([dict(t, brightness=0, contrast=0, saturation=0, hue=0)
                              if t['type'].__name__ == 'ColorJitter' else t for t in pipeline[:-1]])
    np.random.seed(0)
    tops, jittered = set(), 0
    for augment, jitter_on in ((without_jitter, False), (Compose(pipeline[:-1]), True)):
        for _ in range(8):
            out = augment(dict(results))
            out_img, out_seg = out['img'], out['gt_seg_map']
            assert out_img.shape == (448, 448, 3) and out_seg.shape == (448, 448) and out['img_shape'] == (448, 448)
            # rows: all 300 image rows at a random offset, the rest black / 255; columns: 448 of 500, none padded
            rows = np.flatnonzero((out_seg != 255).any(axis=1))
            top = int(rows[0])
            assert len(rows) == 300 and rows[-1] - top == 299 and (out_seg[top:top + 300] != 255).all()
            assert (out_img[out_seg == 255] == 0).all()
            tops.add(top)
            flip = (lambda a: a[:, ::-1]) if out['flip'] else (lambda a: a)
            # the three bands fix the column offset: the label is a crop of the label at the original scale
            dx = [x for x in range(500 - 448 + 1) if np.array_equal(flip(label)[:, x:x + 448], out_seg[top:top + 300])]
            assert len(dx) == 1
            src_img, src_idx = flip(img)[:, dx[0]:dx[0] + 448], flip(idx)[:, dx[0]:dx[0] + 448]
            inside = out_img[top:top + 300]
            if not jitter_on:  # the very pixels: no rescale
                np.testing.assert_array_equal(inside, src_img)
                continue
            # colour jitter is a function of the pixel's colour alone: each source colour becomes ONE colour (a
            # rescale would blend neighbouring colours into many)
            for k in range(4):
                assert len(np.unique(inside[src_idx == k], axis=0)) == 1
            jittered += not np.array_equal(inside, src_img)
    assert len(tops) > 1 and jittered == 8  # random offsets of the short side; the jitter changes the colours


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
