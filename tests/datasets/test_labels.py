"""Tests for csd_mm.datasets.labels (image-level label I/O)."""
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from csd_mm.datasets.labels import (VOC_CLASSES, LabelFileError, labels_for_split, labels_from_masks,
                                    labels_from_xml, load_cls_labels, read_split, save_cls_labels)

VOC12 = Path(__file__).resolve().parents[2] / 'voc12'  # the project's tracked copy of the VOC labels


def test_load_real_voc_labels():
    labels = load_cls_labels(VOC12 / 'cls_labels.npz')
    assert len(labels) == 12031
    vec = labels['2007_000032']  # aeroplane + person
    assert vec.dtype == np.float32 and vec.shape == (20, )
    assert np.flatnonzero(vec).tolist() == [VOC_CLASSES.index('aeroplane'), VOC_CLASSES.index('person')]
    # the known figures of the community's cls_labels.npy (voc12/README.md): 20 classes, every vector 0/1
    assert sum(v.sum() for v in labels.values()) > len(labels)
    assert all(set(np.unique(v).tolist()) <= {0.0, 1.0} for v in labels.values())


def test_npz_round_trip_and_npy_equivalence(tmp_path):
    labels = {'a': np.array([1, 0, 1], np.float32), 'b': np.array([0, 1, 0], np.float32)}
    save_cls_labels(str(tmp_path / 'l.npz'), labels)
    save_cls_labels(str(tmp_path / 'l.npy'), labels)
    for name in ('l.npz', 'l.npy'):
        back = load_cls_labels(tmp_path / name)
        assert list(back) == ['a', 'b'] and all(np.array_equal(back[k], labels[k]) for k in labels)
        assert back['a'].dtype == np.float32
    np.savez(tmp_path / 'bad.npz', ids=np.array(['a']), labels=np.zeros((2, 3)))
    with pytest.raises(LabelFileError, match='bad.npz'):
        load_cls_labels(tmp_path / 'bad.npz')


class _Evil:

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target, )


def test_load_refuses_code_execution(tmp_path):
    target = str(tmp_path / 'pwned')
    path = tmp_path / 'evil.npy'
    payload = np.array({'a': np.ones(3, np.float32), 'b': _Evil(target)}, dtype=object)
    np.save(path, payload, allow_pickle=True)
    with pytest.raises(LabelFileError, match='evil.npy') as err:
        load_cls_labels(path)
    assert 'makedirs' in str(err.value)
    assert not os.path.exists(target)


def test_load_rejects_corrupt_and_wrong_format(tmp_path):
    junk = tmp_path / 'junk.npy'
    junk.write_bytes(b'not a numpy file at all')
    with pytest.raises(LabelFileError, match='junk.npy'):
        load_cls_labels(junk)
    plain = tmp_path / 'plain.npy'
    np.save(plain, np.zeros((3, 20), np.float32))
    with pytest.raises(LabelFileError, match='plain.npy.*dtype'):
        load_cls_labels(plain)
    truncated = tmp_path / 'truncated.npy'
    save_cls_labels(truncated, {'a': np.ones(4)})
    truncated.write_bytes(truncated.read_bytes()[:-20])
    with pytest.raises(LabelFileError, match='truncated.npy'):
        load_cls_labels(truncated)
    ragged = tmp_path / 'ragged.npy'
    np.save(ragged, np.array({'a': np.ones(3), 'b': np.ones(4)}, dtype=object), allow_pickle=True)
    with pytest.raises(LabelFileError, match="ragged.npy.*'b' has 4"):
        load_cls_labels(ragged)
    with pytest.raises(LabelFileError, match='missing.npy'):
        load_cls_labels(tmp_path / 'missing.npy')


def test_load_protocol2_pickle(tmp_path):
    # numpy-1 / Python-2 era files (like VOC's) use protocol 2 with _codecs.encode for bytes
    path = tmp_path / 'p2.npy'
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        pickle.dump(np.array({'x': np.array([0, 1], np.float32)}, dtype=object), f, protocol=2)
    labels = load_cls_labels(path)
    assert labels['x'].tolist() == [0.0, 1.0]


def test_save_roundtrip_and_community_format(tmp_path):
    path = tmp_path / 'sub' / 'labels.npy'
    labels = {'img1': np.array([1, 0, 1]), 'img2': np.array([0, 1, 0], np.float64)}
    save_cls_labels(path, labels)
    assert sorted(os.listdir(path.parent)) == ['labels.npy']  # no temporary file left, no extra suffix
    loaded = load_cls_labels(path)
    community = np.load(path, allow_pickle=True).item()
    for key in labels:
        assert loaded[key].dtype == np.float32 and community[key].dtype == np.float32
        assert loaded[key].tolist() == community[key].tolist() == labels[key].tolist()
    with pytest.raises(ValueError, match="'b' has 2"):
        save_cls_labels(tmp_path / 'bad.npy', {'a': [1, 0, 0], 'b': [1, 0]})
    assert not (tmp_path / 'bad.npy').exists()


def test_read_split(tmp_path):
    split = tmp_path / 'train.txt'
    split.write_text('a\n\n  b  \nc\n')
    assert read_split(split) == ['a', 'b', 'c']
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n \n')
    with pytest.raises(LabelFileError, match='empty.txt.*empty'):
        read_split(empty)
    with pytest.raises(LabelFileError, match='nope.txt'):
        read_split(tmp_path / 'nope.txt')
    two = tmp_path / 'two.txt'  # the older "image mask" list format: the first token's stem is the id
    two.write_text('a\n/JPEGImages/b.jpg /SegmentationClassAug/b.png\n')
    assert read_split(two) == ['a', 'b']
    assert len(read_split(VOC12 / 'train_aug.txt')) == 10582


def _xml(names, difficult=()):
    objects = ''.join(f'<object><name>{n}</name><difficult>{int(n in difficult)}</difficult>'
                      '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>'
                      for n in names)
    return f'<annotation><filename>x.jpg</filename>{objects}</annotation>'


def test_labels_from_xml(tmp_path):
    classes = ['cat', 'dog', 'horse']
    (tmp_path / 'i1.xml').write_text(_xml(['dog', 'dog', 'cat'], difficult=('cat', )))
    (tmp_path / 'i2.xml').write_text(_xml(['horse']))
    (tmp_path / 'i3.xml').write_text(_xml([]))
    labels = labels_from_xml(tmp_path, ['i1', 'i2', 'i3'], classes)
    assert labels['i1'].tolist() == [1, 1, 0]  # the difficult cat counts
    assert labels['i2'].tolist() == [0, 0, 1]
    assert labels['i3'].tolist() == [0, 0, 0]
    assert labels['i1'].dtype == np.float32
    (tmp_path / 'bad.xml').write_text(_xml(['zebra']))
    with pytest.raises(LabelFileError, match="bad.xml.*'zebra'"):
        labels_from_xml(tmp_path, ['bad'], classes)
    (tmp_path / 'broken.xml').write_text('<annotation><object>')
    with pytest.raises(LabelFileError, match='broken.xml'):
        labels_from_xml(tmp_path, ['broken'], classes)
    with pytest.raises(LabelFileError, match='gone.xml'):
        labels_from_xml(tmp_path, ['gone'], classes)


def test_labels_from_masks(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[1:3, 1:3] = 2
    mask[4, :] = 255
    mask[5, 5] = 4
    cv2.imwrite(str(tmp_path / 'gray.png'), mask)
    # a VOC-style palette PNG: the indices are the class values
    pal = Image.fromarray(np.where(mask == 4, 1, mask).astype(np.uint8))  # L, becomes P
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192])
    pal.save(tmp_path / 'pal.png')
    assert Image.open(tmp_path / 'pal.png').mode == 'P'
    labels = labels_from_masks(tmp_path, ['gray', 'pal'], num_classes=4)
    assert labels['gray'].tolist() == [0, 1, 0, 1]
    assert labels['pal'].tolist() == [1, 1, 0, 0]
    with pytest.raises(LabelFileError, match=r'gray.png.*\[4\] outside 0..3'):
        labels_from_masks(tmp_path, ['gray'], num_classes=3)
    with pytest.raises(LabelFileError, match='absent.png'):
        labels_from_masks(tmp_path, ['absent'], num_classes=4)


def test_labels_for_split():
    labels = {'a': np.array([1, 0, 0], np.float32), 'b': np.array([0, 1, 1], np.float32)}
    out = labels_for_split(labels, ['b', 'a', 'b'], 3, label_file='cls.npy')
    assert out.dtype == np.float32
    assert out.tolist() == [[0, 1, 1], [1, 0, 0], [0, 1, 1]]
    with pytest.raises(LabelFileError, match="cls.npy: no label for split id.*zz"):
        labels_for_split(labels, ['a', 'zz'], 3, label_file='cls.npy')
    with pytest.raises(LabelFileError, match="cls.npy: label of 'a' has 3 entries, expected 20"):
        labels_for_split(labels, ['a'], 20, label_file='cls.npy')


def test_npz_label_file_with_pickled_objects_runs_no_code(tmp_path):
    target = str(tmp_path / 'pwned')
    path = tmp_path / 'evil.npz'
    np.savez(path, ids=np.array([_Evil(target)], dtype=object), labels=np.ones((1, 3), np.uint8))
    with pytest.raises(LabelFileError, match=r'evil\.npz is not a valid cls_labels \.npz file'):
        load_cls_labels(path)
    assert not os.path.exists(target)


def test_irns_integer_keys_load_as_voc_ids(tmp_path):
    """IRN's cls_labels.npy keys the ids as integers (its split files are read with np.loadtxt(dtype=np.int32))."""
    path = tmp_path / 'irn_cls_labels.npy'
    vec = np.zeros(20, np.float32)
    vec[[0, 14]] = 1
    np.save(path, {np.int32(2007000032): vec, 2011003276: vec * 0 + (np.arange(20) == 3)}, allow_pickle=True)
    labels = load_cls_labels(str(path))
    assert sorted(labels) == ['2007_000032', '2011_003276']
    np.testing.assert_array_equal(labels['2007_000032'], vec)
    assert labels_for_split(labels, ['2011_003276'], 20)[0].nonzero()[0].tolist() == [3]
    np.save(path, {9: vec}, allow_pickle=True)  # an integer that is no VOC id: refused, not guessed
    with pytest.raises(LabelFileError, match='label key 9 is an integer but not an IRN-style VOC id'):
        load_cls_labels(str(path))
