"""Tests of csd_mm/datasets/csd_dataset.py (CSDDataset: every image, multi-label ones paired with COR-drawn sources)."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

import csd_mm  # noqa: F401  (before mmseg: installs the mmcv-lite fallbacks)
from mmcv.transforms import LoadImageFromFile, Pad, RandomFlip, RandomResize
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmseg.datasets.transforms import LoadAnnotations, RandomCrop
from torch.utils.data import DataLoader

from csd_mm.datasets import (CSDDataset, ImageLevelDataset, build_source_bank, cooccurrence_counts,
                             cooccurrence_probs, make_toy_voc, target_class_distribution)
from csd_mm.datasets.csd_dataset import derive_view_pipelines
from csd_mm.datasets.transforms import CopyPaste, DecodePriorMask, PackCAMInputs, PackCSDInputs

CROP = (48, 48)
TARGET_PIPELINE = [
    dict(type=LoadImageFromFile),
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomCrop, crop_size=CROP),
    dict(type=Pad, size=CROP, pad_val=dict(img=0, seg=255)),
]
SOURCE_PIPELINE = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomCrop, crop_size=CROP),
    dict(type=Pad, size=CROP, pad_val=dict(img=0, seg=255)),
    dict(type=DecodePriorMask),
]
PASTE_PIPELINE = [dict(type=CopyPaste, soft_edge_sigma=0.0), dict(type=PackCSDInputs)]


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """A 24-image toy dataset and a source bank made from its (synthetic) masks."""
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=24, num_val=2, seed=1)
    base = ImageLevelDataset(ann_file='ImageSets/Segmentation/train_aug.txt', data_root=root,
                             label_file='cls_labels.npy', metainfo=dict(classes=tuple(summary['classes'])))
    ids = [base.get_data_info(i)['img_id'] for i in range(len(base))]
    labels = np.stack([base.get_data_info(i)['gt_label'] for i in range(len(base))])
    bank = osp.join(root, 'bank')
    build_source_bank(bank, ids, labels, pseudo_mask_dir=osp.join(root, 'SegmentationClassAug'), progress=False)
    return dict(root=root, classes=tuple(summary['classes']), bank=bank, labels=labels, ids=ids)


def _csd(toy, **kwargs):
    base = dict(type=ImageLevelDataset, ann_file='ImageSets/Segmentation/train_aug.txt', data_root=toy['root'],
                label_file='cls_labels.npy', metainfo=dict(classes=toy['classes']))
    kwargs.setdefault('seed', 0)
    return CSDDataset(dataset=base, source_bank=toy['bank'], pipeline=TARGET_PIPELINE,
                      source_pipeline=SOURCE_PIPELINE, paste_pipeline=PASTE_PIPELINE, **kwargs)


def _label_of(toy, img_id):
    return toy['labels'][toy['ids'].index(img_id)]


def test_readings_iterate_and_pair(toy):
    labels = toy['labels']
    multi = labels.sum(1) >= 2
    num_multi, num_labelled = int(multi.sum()), int((labels.sum(1) >= 1).sum())
    assert 0 < num_multi < num_labelled
    # the paper's reading (default): every labelled image iterated, only the multi-label ones paired
    ds = _csd(toy)
    assert len(ds) == num_labelled
    paired = [ds.is_paired(i) for i in range(len(ds))]
    assert sum(paired) == num_multi
    assert [lab.sum() >= 2 for lab in ds.get_labels()] == paired
    # only multi-label images iterated (all paired)
    ds = _csd(toy, iterate_over='multi_label')
    assert len(ds) == num_multi and all(ds.is_paired(i) for i in range(len(ds)))
    assert all(lab.sum() >= 2 for lab in ds.get_labels())
    # every image paired
    ds = _csd(toy, pair='all')
    assert len(ds) == num_labelled and all(ds.is_paired(i) for i in range(len(ds)))
    with pytest.raises(ValueError, match="iterate_over='multi_label'"):
        _csd(toy, iterate_over='target')  # the old name says what it is called now
    with pytest.raises(ValueError, match='iterate_over'):
        _csd(toy, iterate_over='some')
    with pytest.raises(ValueError, match='pair must be'):
        _csd(toy, pair='single_label')


def test_packed_samples_of_the_real_pipeline(toy):
    ds = _csd(toy)
    probs = cooccurrence_probs(cooccurrence_counts(toy['labels'], include_self=True))
    has_source = np.zeros(toy['labels'].shape[1], bool)
    for lab in toy['labels'][toy['labels'].sum(1) == 1]:
        has_source |= lab > 0
    num_single = 0
    for idx in range(len(ds)):
        out = ds[idx]
        x, s = out['inputs'], out['data_samples']
        target_label = _label_of(toy, s.metainfo['img_id'])
        np.testing.assert_array_equal(s.gt_label.numpy(), target_label)
        if target_label.sum() == 1:
            # unpaired: one view, no source fields, as the baseline packs it
            assert x.dtype == torch.uint8 and x.shape == (1, 3, *CROP)
            assert 'src_fg_mask' not in s and 'src_img_id' not in s.metainfo
            num_single += 1
            continue
        assert x.dtype == torch.uint8 and x.shape == (4, 3, *CROP)
        fg, bg = s.src_fg_mask, s.src_bg_mask
        assert fg.dtype == torch.bool and fg.shape == CROP and bg.shape == CROP
        assert not (fg & bg).any()
        torch.testing.assert_close(x[2], torch.where(fg, x[1], x[0]), rtol=0, atol=0)
        torch.testing.assert_close(x[3], torch.where(bg, x[1], x[0]), rtol=0, atol=0)
        # source: a single-label image of a class COR allows for the multi-label target
        src_label = _label_of(toy, s.metainfo['src_img_id'])
        np.testing.assert_array_equal(s.src_label.numpy(), src_label)
        assert src_label.sum() == 1
        weights = target_class_distribution(probs, target_label, has_source)
        assert weights[int(np.flatnonzero(src_label)[0])] > 0
    assert 0 < num_single < len(ds)


def test_view_pipelines_derived_from_the_baseline(toy):
    baseline_pipeline = TARGET_PIPELINE + [dict(type=PackCAMInputs)]
    base = dict(type=ImageLevelDataset, ann_file='ImageSets/Segmentation/train_aug.txt', data_root=toy['root'],
                label_file='cls_labels.npy', metainfo=dict(classes=toy['classes']), pipeline=baseline_pipeline)
    ds = CSDDataset(dataset=base, source_bank=toy['bank'], pair='all')
    names = lambda pipe: [type(t).__name__ for t in pipe.transforms]  # noqa: E731
    augmentation = ['RandomResize', 'RandomFlip', 'RandomCrop', 'Pad']
    assert names(ds.pipeline) == ['LoadImageFromFile'] + augmentation
    assert names(ds.source_pipeline) == ['LoadImageFromFile', 'LoadAnnotations'] + augmentation + ['DecodePriorMask']
    assert names(ds.paste_pipeline) == ['CopyPaste', 'PackCSDInputs']
    out = ds[0]  # the derived pipelines produce a real pair
    assert out['inputs'].shape == (4, 3, *CROP)
    with pytest.raises(ValueError, match='LoadImageFromFile.*PackCAMInputs'):
        derive_view_pipelines(ds.pipeline)  # no packing transform at the end


def _pairs(ds, order):
    return [(int(i), ds.draw_source(int(i))) for i in order]


def test_draws_are_reproducible_and_independent_of_visit_order(toy):
    n = len(_csd(toy))
    order = list(range(n))
    a, b = _csd(toy), _csd(toy)
    first = _pairs(a, order) + _pairs(a, order)
    assert first == _pairs(b, order) + _pairs(b, order)  # same seed: same sequence
    other = _csd(toy, seed=1)
    assert first != _pairs(other, order) + _pairs(other, order)  # another seed: another one
    assert first[:n] != first[n:]  # the second visit draws again
    # another dataset object visits the indices in another order (as another worker / rank would):
    # index i on its k-th visit still gets the same source
    c = _csd(toy)
    rng = np.random.default_rng(5)
    shuffled = _pairs(c, rng.permutation(n)) + _pairs(c, rng.permutation(n))
    by_visit = {}
    for k, (i, pos) in enumerate(shuffled):
        by_visit[(i, k // n)] = pos
    assert by_visit == {(i, k // n): pos for k, (i, pos) in enumerate(first)}


def test_uniform_sampling(toy):
    ds = _csd(toy, sampling='uniform')
    bank_classes = sorted({e['class'] for e in ds._bank_entries})
    drawn = [ds._bank_entries[ds.draw_source(i % len(ds))]['class'] for i in range(40 * len(ds))]
    # uniform over S: every class with a source image appears, also those COR may give weight 0
    assert sorted(set(drawn)) == bank_classes
    counts = np.bincount([ds.draw_source(0) for _ in range(600)], minlength=len(ds._bank_entries))
    assert (counts > 0).all()  # every source image is drawn for one and the same target


def _epoch_pairs(loader):
    pairs = {}
    for batch in loader:
        for s in batch['data_samples']:
            pairs[s.metainfo['img_id']] = s.metainfo['src_img_id']
    return pairs


def test_dataloader_with_persistent_workers(toy):
    ds = _csd(toy, pair='all')
    loader = DataLoader(ds, batch_size=2, shuffle=True, num_workers=2, persistent_workers=True,
                        collate_fn=pseudo_collate, generator=torch.Generator().manual_seed(0))
    epoch1, epoch2 = _epoch_pairs(loader), _epoch_pairs(loader)
    fresh = _csd(toy, pair='all')
    for _ in range(2):  # a fresh run in the main process, another order: the k-th visits draw the same
        expected = {}
        for i in reversed(range(len(fresh))):
            expected[fresh.dataset.get_data_info(int(fresh._items[i]))['img_id']] = \
                fresh._bank_entries[fresh.draw_source(i)]['img_id']
        if _ == 0:
            assert epoch1 == expected
    assert epoch2 == expected
    assert len(epoch1) == len(ds) and epoch1 != epoch2


def test_default_sampler_world_size_two(toy):
    ds = _csd(toy)
    n = len(ds)
    samplers = []
    for rank in range(2):
        sampler = DefaultSampler(ds, shuffle=True, seed=0)
        # the views of rank 0 and rank 1 of a world of size 2 (the sampler reads them at construction)
        sampler.rank, sampler.world_size = rank, 2
        sampler.num_samples = math.ceil(n / 2)
        sampler.total_size = sampler.num_samples * 2
        samplers.append(sampler)
    ref, ref_draws = _csd(toy), {}

    def ref_draw(i, k):  # the reference draw of index i on its k-th visit
        while (i, k) not in ref_draws:
            visit = int(ref._visits[i])
            ref_draws[(i, visit)] = ref.draw_source(i)
        return ref_draws[(i, k)]

    rank_ds = [_csd(toy), _csd(toy)]
    seen = []
    for epoch in range(2):
        parts = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            parts.append(list(sampler))
        assert sorted(set(parts[0]) | set(parts[1])) == list(range(n))  # together they cover the dataset
        for part, d in zip(parts, rank_ds):
            for i in part:
                k = int(d._visits[i])
                assert d.draw_source(i) == ref_draw(i, k)
                seen.append((i, k))
    assert any(k > 0 for _, k in seen)


def test_missing_bank_index(toy, tmp_path):
    base = dict(type=ImageLevelDataset, ann_file='ImageSets/Segmentation/train_aug.txt', data_root=toy['root'],
                label_file='cls_labels.npy', metainfo=dict(classes=toy['classes']))
    with pytest.raises(FileNotFoundError, match='no source bank index'):
        CSDDataset(dataset=base, source_bank=str(tmp_path), pipeline=[], source_pipeline=[], paste_pipeline=[])


def test_a_source_pipeline_without_prior_decoding_is_refused(toy):
    base = dict(type=ImageLevelDataset, ann_file='ImageSets/Segmentation/train_aug.txt', data_root=toy['root'],
                label_file='cls_labels.npy', metainfo=dict(classes=toy['classes']))
    ds = CSDDataset(dataset=base, source_bank=toy['bank'], pipeline=TARGET_PIPELINE,
                    source_pipeline=SOURCE_PIPELINE[:-1], paste_pipeline=PASTE_PIPELINE, pair='all')
    with pytest.raises(KeyError, match='DecodePriorMask'):
        ds[0]


def test_a_bank_of_other_labels_is_refused(toy, tmp_path):
    """A bank built from other labels (here: one entry moved to another class) is refused, naming the bank."""
    import json
    import shutil
    bank = str(tmp_path / 'bank')
    shutil.copytree(toy['bank'], bank)
    index = json.loads(open(osp.join(bank, 'index.json')).read())
    entry = index['entries'][0]
    entry['class'] = (entry['class'] + 1) % len(toy['labels'][0])
    with open(osp.join(bank, 'index.json'), 'w') as f:
        json.dump(index, f)
    base = dict(type=ImageLevelDataset, ann_file='ImageSets/Segmentation/train_aug.txt', data_root=toy['root'],
                label_file='cls_labels.npy', metainfo=dict(classes=toy['classes']))
    with pytest.raises(ValueError, match=rf"source bank {bank}: 1 entries are not single-label images of the "
                                         rf"class they are stored under, by the labels of ImageLevelDataset "
                                         rf"\(.*cls_labels\.npy\) \(e\.g\. '{entry['img_id']}'"):
        CSDDataset(dataset=base, source_bank=bank, pipeline=TARGET_PIPELINE, source_pipeline=SOURCE_PIPELINE,
                   paste_pipeline=PASTE_PIPELINE)
