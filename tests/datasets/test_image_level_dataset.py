"""Tests for csd_mm.datasets.ImageLevelDataset on a tiny generated toy root."""
import shutil

import csd_mm  # noqa: F401,I001  (first: installs the mmcv-lite ops fallback mmseg needs)
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile, RandomFlip, RandomResize
from mmseg.datasets.transforms import LoadAnnotations, RandomCrop
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

from csd_mm.datasets import ImageLevelDataset
from csd_mm.datasets.domain import split_domains
from csd_mm.datasets.labels import LabelFileError, load_cls_labels, save_cls_labels
from csd_mm.datasets.toy import TOY_CLASSES, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs

CLASSES = ('background', ) + TOY_CLASSES
SPLIT = 'ImageSets/Segmentation/train_aug.txt'


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp('toy')
    make_toy_voc(str(path), num_train=16, num_val=4, size=48, seed=1)
    return path


def _dataset(root, **kwargs):
    kwargs.setdefault('metainfo', dict(classes=CLASSES))
    return ImageLevelDataset(data_root=str(root), ann_file=kwargs.pop('ann_file', SPLIT), **kwargs)


def test_data_info_contract(root):
    ds = _dataset(root)
    labels = load_cls_labels(root / 'cls_labels.npy')
    assert len(ds) == 16
    info = ds.get_data_info(3)
    assert info['img_id'] == 'toytr_00003'
    assert info['img_path'] == str(root / 'JPEGImages' / 'toytr_00003.jpg')
    assert info['gt_label'].dtype == np.float32 and info['gt_label'].shape == (5, )
    assert info['gt_label'].tolist() == labels['toytr_00003'].tolist()
    assert info['seg_map_path'] is None
    assert info['reduce_zero_label'] is False and info['seg_fields'] == [] and info['label_map'] is None
    assert ds.metainfo['classes'] == CLASSES and len(ds.metainfo['palette']) == len(CLASSES)
    assert ds.metainfo['label_map'] is None
    np.testing.assert_array_equal(ds.get_labels(), np.stack([labels[f'toytr_{i:05d}'] for i in range(16)]))


def test_pipeline_packs_sample(root):
    pipeline = [
        dict(type=LoadImageFromFile),
        dict(type=LoadAnnotations),
        dict(type=RandomResize, scale=(64, 64), ratio_range=(0.8, 1.2), keep_ratio=True),
        dict(type=RandomCrop, crop_size=(40, 40)),
        dict(type=RandomFlip, prob=0.5),
        dict(type=PackCAMInputs),
    ]
    ds = _dataset(root, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                  pipeline=pipeline)
    for idx in (0, 5):
        out = ds[idx]
        inputs, sample = out['inputs'], out['data_samples']
        assert isinstance(sample, SegDataSample)
        assert inputs.dtype == torch.uint8 and inputs.shape == (3, 40, 40)
        assert sample.gt_sem_seg.data.shape == (1, 40, 40)
        assert sample.gt_label.dtype == torch.float32
        assert sample.gt_label.tolist() == ds.get_data_info(idx)['gt_label'].tolist()
        assert sample.img_id == f'toytr_{idx:05d}'
        assert sample.ori_shape == (48, 48) and sample.img_shape == (40, 40)
        assert sample.seg_map_path.endswith(f'SegmentationClassAug/toytr_{idx:05d}.png')
        assert 'flip' in sample.metainfo
        values = set(torch.unique(sample.gt_sem_seg.data).tolist())
        assert values <= set(range(len(CLASSES))) | {255}


def test_domains_and_label_sources(root):
    full = _dataset(root, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'))
    labels = full.get_labels()
    source_idx, target_idx = split_domains(labels)
    source = _dataset(root, domain='source')
    target = _dataset(root, domain='target')
    assert len(source) == len(source_idx) and len(target) == len(target_idx)
    assert (source.get_labels().sum(1) == 1).all() and (target.get_labels().sum(1) >= 2).all()
    assert [source.get_data_info(i)['img_id'] for i in range(len(source))] == \
        [f'toytr_{i:05d}' for i in source_idx]
    from_xml = _dataset(root, label_source='xml')
    from_mask = _dataset(root, label_source='mask',
                         data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'))
    np.testing.assert_array_equal(from_xml.get_labels(), labels)
    np.testing.assert_array_equal(from_mask.get_labels(), labels)
    built = DATASETS.build(dict(type='ImageLevelDataset', data_root=str(root), ann_file=SPLIT,
                                metainfo=dict(classes=CLASSES), domain='target'))
    assert isinstance(built, ImageLevelDataset) and len(built) == len(target_idx)


def test_helpful_errors(root, tmp_path):
    # default metainfo is VOC (20 foreground classes) but the toy labels have 5 entries
    with pytest.raises(LabelFileError, match=r"cls_labels.npy: label of 'toytr_00000' has 5 entries, "
                       r'expected 20'):
        ImageLevelDataset(data_root=str(root), ann_file=SPLIT)
    labels = load_cls_labels(root / 'cls_labels.npy')
    del labels['toytr_00004']
    save_cls_labels(tmp_path / 'partial.npy', labels)
    with pytest.raises(LabelFileError, match=r'partial.npy: no label for split id\(s\) toytr_00004'):
        _dataset(root, label_file=str(tmp_path / 'partial.npy'))
    with pytest.raises(ValueError, match="needs data_prefix\\['seg_map_path'\\]"):
        _dataset(root, label_source='mask')
    with pytest.raises(ValueError, match='domain must be'):
        _dataset(root, domain='both')
    with pytest.raises(ValueError, match="must start with 'background'"):
        _dataset(root, metainfo=dict(classes=TOY_CLASSES + ('extra', )))
    # a missing image file is named at load time
    broken = tmp_path / 'broken'
    shutil.copytree(root, broken)
    (broken / 'JPEGImages' / 'toytr_00007.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='toytr_00007.jpg'):
        _dataset(broken)
    (broken / 'SegmentationClassAug' / 'toyva_00002.png').unlink()
    with pytest.raises(FileNotFoundError, match='mask.*toyva_00002.png'):
        _dataset(broken, data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                 ann_file='ImageSets/Segmentation/val.txt')


@pytest.mark.parametrize('content', [b'', b'\xff\xd8\xff\xe0 truncated jpeg'])
def test_corrupt_image_is_named_when_loaded(root, tmp_path, content):
    """mmcv's LoadImageFromFile stops on an empty file with a bare cv2.error; the dataset names the image."""
    broken = tmp_path / 'broken'
    shutil.copytree(root, broken)
    (broken / 'JPEGImages' / 'toytr_00003.jpg').write_bytes(content)
    ds = _dataset(broken, pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
    index = [ds.get_data_info(i)['img_id'] for i in range(len(ds))].index('toytr_00003')
    with pytest.raises(ValueError, match=r'image .*toytr_00003\.jpg cannot be decoded \(empty, truncated or not '
                                         r'an image file\)'):
        ds[index]
    assert ds[(index + 1) % len(ds)]['inputs'].shape[0] == 3  # the others still load
