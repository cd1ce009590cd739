"""Tests of the mask-aware geometric transforms (csd_mm/datasets/transforms/mask_aware_*.py).

Without label maps each one must equal its mmpretrain original pixel for pixel for the same random state;
with label maps, the maps must move exactly as the image does.
"""
import copy

import numpy as np
import pytest
from mmpretrain.datasets.transforms import (RandAugment, RandomErasing, RandomResizedCrop, Rotate, Shear,
                                            Translate)

from csd_mm.datasets.transforms import (MaskAwareRandAugment, MaskAwareRandomResizedCrop, MaskAwareRotate,
                                        MaskAwareShear, MaskAwareTranslate)
from mmseg.registry import TRANSFORMS

HPARAMS = dict(pad_val=[104, 116, 124], interpolation='bicubic')  # the MCTformer config's
RANDAUG = dict(policies='timm_increasing', num_policies=2, magnitude_level=9, magnitude_std=0.5, total_level=10,
               hparams=HPARAMS)


def _image(h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def _same_as_mmpretrain(ours, theirs, seeds=range(40), **image_kwargs):
    for seed in seeds:
        img = _image(seed=seed, **image_kwargs)
        np.random.seed(seed)
        a = ours({'img': img.copy()})
        np.random.seed(seed)
        b = theirs({'img': img.copy()})
        assert np.array_equal(a['img'], b['img']), (type(ours).__name__, seed)
        assert a['img'].dtype == b['img'].dtype


@pytest.mark.parametrize('ours,theirs,kwargs', [
    (MaskAwareRandomResizedCrop, RandomResizedCrop, dict(scale=24, interpolation='bicubic', backend='pillow')),
    (MaskAwareRandomResizedCrop, RandomResizedCrop, dict(scale=(20, 30))),  # cv2 bilinear
    (MaskAwareRotate, Rotate, dict(magnitude_range=(0, 30), magnitude_level=9, magnitude_std=0.5, prob=0.5,
                                   pad_val=(104, 116, 124), interpolation='bicubic')),
    (MaskAwareRotate, Rotate, dict(angle=20.0, center=(3.0, 4.0), scale=1.2)),
    (MaskAwareShear, Shear, dict(magnitude_range=(0, 0.3), magnitude_level=9, magnitude_std=0.5,
                                 direction='vertical', interpolation='bicubic')),
    (MaskAwareShear, Shear, dict(magnitude=0.2)),
    (MaskAwareTranslate, Translate, dict(magnitude_range=(0, 0.45), magnitude_level=9, magnitude_std=0.5,
                                         interpolation='bicubic')),
    (MaskAwareTranslate, Translate, dict(magnitude=0.3, direction='vertical')),
])
def test_without_masks_each_op_equals_mmpretrains(ours, theirs, kwargs):
    _same_as_mmpretrain(ours(**kwargs), theirs(**kwargs))


def test_without_masks_rand_augment_equals_mmpretrains():
    ours, theirs = MaskAwareRandAugment(**RANDAUG), RandAugment(**RANDAUG)
    assert [type(t).__name__ for t in ours.transforms] == [
        'AutoContrast', 'Equalize', 'Invert', 'MaskAwareRotate', 'Posterize', 'Solarize', 'SolarizeAdd',
        'ColorTransform', 'Contrast', 'Brightness', 'Sharpness', 'MaskAwareShear', 'MaskAwareShear',
        'MaskAwareTranslate', 'MaskAwareTranslate']
    assert [t.direction for t in ours.transforms[11:]] == ['horizontal', 'vertical'] * 2
    for op in ours.transforms[3], ours.transforms[11], ours.transforms[13]:
        assert op.pad_val == (104, 116, 124) and op.interpolation == 'bicubic' and op.seg_pad_val == 255
        assert (op.magnitude_level, op.magnitude_std, op.total_level) == (9, 0.5, 10)
    _same_as_mmpretrain(ours, theirs, seeds=range(150))


def _label_image(h=40, w=56, seed=0):
    """An image whose every channel is a label map (values 1..200), and that map."""
    seg = np.random.default_rng(seed).integers(1, 200, (h, w)).astype(np.uint8)
    return np.repeat(seg[..., None], 3, axis=2), seg


@pytest.mark.parametrize('op', [
    MaskAwareRandomResizedCrop(scale=(24, 32), interpolation='nearest', backend='pillow'),
    MaskAwareRotate(magnitude_range=(0, 30), magnitude_level=9, magnitude_std=0.5, prob=1.0, pad_val=0,
                    interpolation='nearest'),
    MaskAwareShear(magnitude_range=(0, 0.3), magnitude_level=9, prob=1.0, pad_val=0, interpolation='nearest'),
    MaskAwareShear(magnitude=0.25, direction='vertical', prob=1.0, pad_val=0, interpolation='nearest'),
    MaskAwareTranslate(magnitude_range=(0, 0.45), magnitude_level=9, prob=1.0, pad_val=0,
                       interpolation='nearest'),
    MaskAwareTranslate(magnitude=0.3, direction='vertical', prob=1.0, pad_val=0, interpolation='nearest'),
])
def test_masks_move_exactly_as_a_nearest_image(op):
    """With nearest image sampling the image carries the labels itself: the moved maps must equal it (0 in
    the image, i.e. from outside, is 255 in the maps)."""
    for seed in range(30):
        img, seg = _label_image(seed=seed)
        extra = (seg // 2).astype(np.uint8)
        np.random.seed(seed)
        out = op({'img': img, 'gt_seg_map': seg.copy(), 'extra': extra.copy(),
                  'seg_fields': ['extra', 'gt_seg_map']})
        moved = out['img'][..., 0]
        expected = np.where(moved == 0, 255, moved)
        assert np.array_equal(out['gt_seg_map'], expected), (type(op).__name__, seed)
        assert np.array_equal(out['extra'], np.where(moved == 0, 255, moved // 2))
        assert out['gt_seg_map'].shape == out['img'].shape[:2]
        if isinstance(op, MaskAwareRandomResizedCrop):
            assert out['img_shape'] == (24, 32) and (out['gt_seg_map'] != 255).all()


def test_disabled_op_leaves_everything():
    img, seg = _label_image()
    for op in (MaskAwareRotate(angle=30.0, prob=0.0), MaskAwareShear(magnitude=0.3, prob=0.0),
               MaskAwareTranslate(magnitude=0.3, prob=0.0)):
        out = op({'img': img.copy(), 'gt_seg_map': seg.copy()})
        assert np.array_equal(out['img'], img) and np.array_equal(out['gt_seg_map'], seg)


def test_photometric_ops_never_change_masks():
    photometric = [dict(type=t) for t in ('AutoContrast', 'Equalize', 'Invert')] + [
        dict(type='Posterize', magnitude_range=(4, 0)), dict(type='Solarize', magnitude_range=(256, 0)),
        dict(type='SolarizeAdd', magnitude_range=(0, 110)), dict(type='ColorTransform', magnitude_range=(0, 0.9)),
        dict(type='Contrast', magnitude_range=(0, 0.9)), dict(type='Brightness', magnitude_range=(0, 0.9)),
        dict(type='Sharpness', magnitude_range=(0, 0.9))]
    randaug = MaskAwareRandAugment(policies=photometric, num_policies=3, magnitude_level=9, magnitude_std=0.5,
                                   hparams=HPARAMS)
    erasing = RandomErasing(erase_prob=1.0, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
                            fill_color=(103.53, 116.28, 123.675), fill_std=(57.375, 57.12, 58.395))
    changed = 0
    for seed in range(40):
        img = _image(seed=seed)
        seg = np.random.default_rng(seed).choice(np.array([0, 1, 255], np.uint8), img.shape[:2])
        np.random.seed(seed)
        out = erasing(randaug({'img': img.copy(), 'gt_seg_map': seg.copy(), 'seg_fields': ['gt_seg_map']}))
        assert np.array_equal(out['gt_seg_map'], seg), seed
        changed += not np.array_equal(out['img'], img)
    assert changed == 40  # the ops did act on the images


def test_rand_augment_refuses_ops_it_cannot_make_mask_aware():
    for bad in ([dict(type='RandomTranslatePad')], [dict(type='Rotate', magnitude_range=(0, 30)), 'Invert']):
        with pytest.raises(ValueError, match='MaskAwareRandAugment: policy type'):
            MaskAwareRandAugment(policies=bad, num_policies=1, magnitude_level=9)
    with pytest.raises(ValueError, match='seg_pad_val'):
        MaskAwareRandAugment(policies='timm_increasing', num_policies=2, magnitude_level=9, seg_pad_val=300)


def test_registered_in_mmseg_and_built_from_config():
    for name in ('MaskAwareRandomResizedCrop', 'MaskAwareRandAugment', 'MaskAwareRotate', 'MaskAwareShear',
                 'MaskAwareTranslate'):
        assert TRANSFORMS.get(name) is not None, name
    op = TRANSFORMS.build(dict(type='MaskAwareRandAugment', seg_pad_val=0, **copy.deepcopy(RANDAUG)))
    assert op.transforms[3].seg_pad_val == 0
    assert 'seg_pad_val=0' in repr(op.transforms[3]) and ', ,' not in repr(op.transforms[3])


def test_label_map_size_mismatch_names_the_transform_and_the_image():
    img, seg = _label_image()
    with pytest.raises(ValueError, match=r"MaskAwareRotate: results\['gt_seg_map'\] has shape .* \(data/a.jpg\)"):
        MaskAwareRotate(angle=10.0, prob=1.0)({'img': img, 'gt_seg_map': seg[:, :-1], 'img_path': 'data/a.jpg'})
    with pytest.raises(KeyError, match="MaskAwareRandomResizedCrop: seg_fields names 'gt_seg_map'"):
        MaskAwareRandomResizedCrop(scale=8)({'img': img, 'seg_fields': ['gt_seg_map']})
