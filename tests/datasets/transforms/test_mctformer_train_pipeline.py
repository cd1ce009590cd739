"""The MCTformer VOC config's training augmentation (timm's, written with mmpretrain's and csd_mm's transforms).

CSD derives its target and source pipelines from ``train_pipeline[1:-1]``, and the source image's prior mask
(0 bg / 1 fg / 255 unsure) rides along as ``gt_seg_map``: it must stay on its object through every geometric
transform, and the photometric ones must leave its values alone.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmcv.transforms import RandomFlip as MMCVRandomFlip
from mmengine.config import Config
from mmpretrain.datasets.transforms import RandAugment, RandomResizedCrop

from mmseg.registry import TRANSFORMS

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / 'configs/mctformer/mctformer_v2_deits_8xb8_60e_voc12aug_224.py'
BG, FG = 40, 220


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(str(CONFIG))


def _augmentation(cfg):
    pipeline = cfg.train_pipeline
    assert pipeline[0]['type'].__name__ == 'LoadImageFromFile' and pipeline[-1]['type'].__name__ == 'PackCAMInputs'
    return Compose([TRANSFORMS.build(t) for t in pipeline[1:-1]])


def _object_image(h=180, w=240):
    """A grey image, dark background and a bright asymmetric object (a disc and a bar toward the top left),
    and the object's mask."""
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (80, 70), 45, 1, -1)
    mask[60:80, 80:200] = 1
    img = np.where(mask[..., None] == 1, FG, BG).astype(np.uint8).repeat(3, axis=2)
    return img, mask


def _agreement(img, mask, margin=12):
    """Fractions of the grey interior pixels of the mask's object / background that carry the object's /
    background's (single) value, or None when the sample cannot tell (too little interior, or a photometric op
    merged the two values). Non-grey pixels (random erasing, blends with the coloured fill) are left out."""
    grey = (img[..., 0] == img[..., 1]) & (img[..., 1] == img[..., 2])
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    inside = cv2.erode((mask == 1).astype(np.uint8), kernel).astype(bool) & grey
    outside = cv2.erode((mask == 0).astype(np.uint8), kernel).astype(bool) & grey
    if inside.sum() < 50 or outside.sum() < 50:
        return None
    value = img[..., 0].astype(np.int64)
    v_in, v_out = np.median(value[inside]), np.median(value[outside])
    if abs(v_in - v_out) <= 8:
        return None
    return (np.abs(value[inside] - v_in) <= 6).mean(), (np.abs(value[outside] - v_out) <= 6).mean()


def test_pipeline_is_timms_recipe(cfg):
    names = [t['type'].__name__ for t in cfg.train_pipeline]
    assert names == ['LoadImageFromFile', 'MaskAwareRandomResizedCrop', 'RandomFlip', 'MaskAwareRandAugment',
                     'RandomErasing', 'PackCAMInputs']
    crop, flip, randaug, erasing = cfg.train_pipeline[1:-1]
    assert crop['scale'] == (224, 224) and crop['crop_ratio_range'] == (0.08, 1.0)
    assert crop['aspect_ratio_range'] == pytest.approx((3 / 4, 4 / 3))
    assert (crop['interpolation'], crop['backend']) == ('bicubic', 'pillow')
    assert flip['type'].__module__.startswith('mmseg') and (flip['prob'], flip['direction']) == (0.5, 'horizontal')
    assert (randaug['policies'], randaug['num_policies'], randaug['magnitude_level'], randaug['magnitude_std'],
            randaug['total_level']) == ('timm_increasing', 2, 9, 0.5, 10)
    assert randaug['hparams'] == dict(pad_val=(104, 116, 124), interpolation='bicubic')  # timm: mean, bicubic
    assert (erasing['erase_prob'], erasing['mode'], erasing['min_area_ratio']) == (0.25, 'rand', 0.02)
    assert erasing['max_area_ratio'] == pytest.approx(1 / 3)
    assert erasing['aspect_range'] == pytest.approx((0.3, 1 / 0.3))
    assert erasing['fill_color'] == pytest.approx((103.53, 116.28, 123.675))  # ImageNet mean, BGR
    assert erasing['fill_std'] == pytest.approx((57.375, 57.12, 58.395))


def test_without_masks_the_augmentation_is_mmpretrains(cfg):
    """Same seed, same pixels as mmpretrain's own transforms with the same arguments (mmcv's flip)."""
    ours = _augmentation(cfg)
    crop, flip, randaug, erasing = [dict(t) for t in cfg.train_pipeline[1:-1]]
    for t in (crop, flip, randaug):
        t.pop('type')
    theirs = Compose([RandomResizedCrop(**crop), MMCVRandomFlip(**flip), RandAugment(**randaug),
                      TRANSFORMS.build(erasing)])
    rng = np.random.default_rng(0)
    for seed in range(60):
        img = rng.integers(0, 256, (150, 200, 3)).astype(np.uint8)
        np.random.seed(seed)
        a = ours({'img': img.copy()})['img']
        np.random.seed(seed)
        b = theirs({'img': img.copy()})['img']
        assert a.shape == (224, 224, 3) and np.array_equal(a, b), seed


def _run(augmentation, img, mask, seed):
    np.random.seed(seed)
    out = augmentation({'img': img.copy(), 'gt_seg_map': mask.copy(), 'seg_fields': ['gt_seg_map'],
                        'img_shape': img.shape[:2], 'ori_shape': img.shape[:2]})
    return out['img'], out['gt_seg_map']


def test_prior_mask_stays_on_its_object(cfg):
    augmentation = _augmentation(cfg)
    # control: the same augmentation with mmpretrain's RandAugment, whose Rotate / Shear / Translate move the
    # image only (same random draws, so the same images)
    steps = list(augmentation.transforms)
    randaug = dict(cfg.train_pipeline[3])
    randaug.pop('type')
    steps[2] = RandAugment(**randaug)
    control = Compose(steps)
    img, mask = _object_image()
    checked, control_misaligned = 0, 0
    for seed in range(120):
        out_img, out_mask = _run(augmentation, img, mask, seed)
        assert out_img.shape == (224, 224, 3) and out_mask.shape == (224, 224) and out_mask.dtype == np.uint8
        assert set(np.unique(out_mask)) <= {0, 1, 255}, seed  # labels are moved, never blended
        agreement = _agreement(out_img, out_mask)
        if agreement is None:
            continue
        checked += 1
        assert min(agreement) >= 0.99, (seed, agreement)  # the mask's region is on the object's pixels
        control_img, control_mask = _run(control, img, mask, seed)
        assert np.array_equal(control_img, out_img)
        wrong = _agreement(control_img, control_mask)
        control_misaligned += wrong is None or min(wrong) < 0.99
    assert checked >= 100
    # the check has teeth: about a third of the samples get a geometric RandAugment op (2 draws of 15 ops, 5 of
    # them geometric, each applied with probability 0.5), and the control's mask misses those
    assert control_misaligned >= 20


def test_images_without_prior_mask_go_through(cfg):
    """The target images of CSD (and the baseline's) have no gt_seg_map."""
    img, _ = _object_image()
    np.random.seed(0)
    out = _augmentation(cfg)({'img': img})
    assert out['img'].shape == (224, 224, 3) and 'gt_seg_map' not in out
