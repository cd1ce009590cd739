"""Tests for csd_mm.datasets.toy (synthetic VOC-format data with a co-occurrence confound)."""
import json
import os

import cv2
import numpy as np
import pytest

from csd_mm.datasets.cooccurrence import cooccurrence_counts
from csd_mm.datasets.domain import domain_split
from csd_mm.datasets.labels import (labels_for_split, labels_from_masks, labels_from_xml, load_cls_labels,
                                    read_split)
from csd_mm.datasets.toy import TOY_CLASSES, make_toy_voc, render_toy_image

HORSE, RIDER = TOY_CLASSES.index('horse'), TOY_CLASSES.index('rider')
SMALL = dict(num_train=12, num_val=4, size=48, seed=3)


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_small')
    summary = make_toy_voc(str(root), **SMALL)
    return root, summary


@pytest.fixture(scope='module')
def default_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_default')
    summary = make_toy_voc(str(root))
    return root, summary


def test_layout(small_root):
    root, summary = small_root
    assert summary['skipped'] is False
    assert summary['classes'] == ['background'] + list(TOY_CLASSES)
    train_aug = read_split(root / 'ImageSets/Segmentation/train_aug.txt')
    train = read_split(root / 'ImageSets/Segmentation/train.txt')
    val = read_split(root / 'ImageSets/Segmentation/val.txt')
    assert len(train_aug) == 12 and len(val) == 4 and train == train_aug[:6]
    assert not set(train_aug) & set(val)
    for img_id in train_aug + val:
        img = cv2.imread(str(root / 'JPEGImages' / f'{img_id}.jpg'), cv2.IMREAD_UNCHANGED)
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8
        mask = cv2.imread(str(root / 'SegmentationClassAug' / f'{img_id}.png'), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (48, 48) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= set(range(len(TOY_CLASSES) + 1)) | {255}
        assert (root / 'Annotations' / f'{img_id}.xml').is_file()
        assert (root / 'SegmentationClass' / f'{img_id}.png').is_file() == (img_id in train + val)
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['classes'] == summary['classes'] and len(meta['palette']) == len(TOY_CLASSES) + 1
    assert not [f for f in os.listdir(root / 'JPEGImages') if f.endswith('.tmp')]


def test_labels_agree_across_sources(small_root):
    root, _ = small_root
    ids = read_split(root / 'ImageSets/Segmentation/train_aug.txt') + \
        read_split(root / 'ImageSets/Segmentation/val.txt')
    npy = load_cls_labels(root / 'cls_labels.npy')
    assert sorted(npy) == sorted(ids)
    from_xml = labels_from_xml(root / 'Annotations', ids, TOY_CLASSES)
    from_mask = labels_from_masks(root / 'SegmentationClassAug', ids, len(TOY_CLASSES))
    for i in ids:
        assert npy[i].tolist() == from_xml[i].tolist() == from_mask[i].tolist()
        assert npy[i].sum() >= 1


def test_deterministic_and_rerun_skipped(small_root, tmp_path):
    root, _ = small_root
    again = tmp_path / 'again'
    make_toy_voc(str(again), **SMALL)
    for sub in ('JPEGImages', 'SegmentationClassAug', 'Annotations'):
        for name in os.listdir(root / sub):
            assert (root / sub / name).read_bytes() == (again / sub / name).read_bytes(), name
    assert (root / 'cls_labels.npy').read_bytes() == (again / 'cls_labels.npy').read_bytes()
    assert (root / 'meta.json').read_bytes() == (again / 'meta.json').read_bytes()
    stamp = os.stat(again / 'cls_labels.npy').st_mtime_ns
    summary = make_toy_voc(str(again), **SMALL)
    assert summary['skipped'] is True and summary['root'] == str(again)
    assert os.stat(again / 'cls_labels.npy').st_mtime_ns == stamp
    with pytest.raises(ValueError, match='other|not'):
        make_toy_voc(str(again), **dict(SMALL, seed=4))
    other = make_toy_voc(str(tmp_path / 'seed4'), **dict(SMALL, seed=4))
    assert other['skipped'] is False
    assert (tmp_path / 'seed4' / 'JPEGImages' / 'toytr_00000.jpg').read_bytes() != \
        (again / 'JPEGImages' / 'toytr_00000.jpg').read_bytes()


def test_default_statistics_have_the_confound(default_root):
    root, summary = default_root
    ids = read_split(root / 'ImageSets/Segmentation/train_aug.txt')
    labels = labels_for_split(load_cls_labels(root / 'cls_labels.npy'), ids, len(TOY_CLASSES))
    assert len(ids) == 200 and summary['num_val'] == 60
    split = domain_split(labels)
    assert 0.35 <= split.num_target / len(ids) <= 0.50
    counts = cooccurrence_counts(labels, include_self=False)
    rider_total = labels[:, RIDER].sum()
    # rider mostly appears with horse, rarely alone, but has single-label images
    assert counts[RIDER, HORSE] / rider_total >= 0.75
    assert 3 <= split.single_label_counts[RIDER] <= 0.2 * rider_total
    # horse appears with a rider in most of its images, and also alone
    assert counts[HORSE, RIDER] / labels[:, HORSE].sum() >= 0.6
    assert split.single_label_counts[HORSE] >= 10
    # the other classes mostly appear alone and never with horse / rider
    for c in range(len(TOY_CLASSES)):
        if c not in (HORSE, RIDER):
            assert split.single_label_counts[c] / labels[:, c].sum() >= 0.6
            assert counts[c, HORSE] == counts[c, RIDER] == 0


def test_riders_touch_their_horses(default_root):
    root, _ = default_root
    labels = load_cls_labels(root / 'cls_labels.npy')
    pairs = [i for i, v in labels.items() if v[HORSE] and v[RIDER]]
    assert len(pairs) >= 50
    for img_id in pairs:
        mask = cv2.imread(str(root / 'SegmentationClassAug' / f'{img_id}.png'), cv2.IMREAD_UNCHANGED)
        rider = mask == RIDER + 1
        near = np.zeros_like(rider)
        near[1:] |= rider[:-1]
        near[:-1] |= rider[1:]
        near[:, 1:] |= rider[:, :-1]
        near[:, :-1] |= rider[:, 1:]
        assert (near & (mask == HORSE + 1)).any(), img_id


def test_render_appearance_is_noisy_and_varied():
    areas, means = {c: [] for c in range(len(TOY_CLASSES))}, {c: [] for c in range(len(TOY_CLASSES))}
    for i in range(60):
        img, mask, objects = render_toy_image(np.random.default_rng([0, 9, i]), size=64)
        assert {o['cls'] for o in objects} == {int(v) - 1 for v in np.unique(mask) if 0 < v < 255}
        for c in {o['cls'] for o in objects}:
            pix = img[mask == c + 1].astype(np.float32)
            assert pix.std(axis=0).mean() > 5  # textured and noisy, not flat colour
            areas[c].append(len(pix))
            means[c].append(pix.mean(axis=0))
        bg = img[mask == 0].astype(np.float32)
        assert bg.std(axis=0).mean() > 10  # cluttered background
    for c in areas:
        if len(areas[c]) >= 3:
            assert max(areas[c]) > 1.5 * min(areas[c])  # sizes vary
            assert np.std(np.array(means[c]), axis=0).mean() > 3  # colour jitter per object
