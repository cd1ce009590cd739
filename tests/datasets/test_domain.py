"""Tests for csd_mm.datasets.domain (source / target split of CSD, BMVC 2023)."""
from pathlib import Path

import numpy as np
import pytest

from csd_mm.datasets.domain import (class_counts, domain_split, label_cardinality_histogram, source_class_of,
                                    split_domains)
from csd_mm.datasets.labels import VOC_CLASSES, labels_for_split, load_cls_labels, read_split

VOC12 = Path(__file__).resolve().parents[2] / 'voc12'  # the project's tracked copy of the VOC labels


@pytest.fixture(scope='module')
def voc_labels():
    labels = load_cls_labels(VOC12 / 'cls_labels.npz')
    return {name: labels_for_split(labels, read_split(VOC12 / f'{name}.txt'), 20)
            for name in ('train_aug', 'train')}


def test_hand_example():
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1]], np.float32)
    source, target = split_domains(labels)
    assert source.tolist() == [0, 3, 5] and target.tolist() == [1, 4]
    assert source.dtype == np.int64
    assert class_counts(labels).tolist() == [2, 3, 3]
    assert class_counts(labels, source).tolist() == [1, 1, 1]
    assert class_counts(labels, target).tolist() == [1, 2, 2]
    assert label_cardinality_histogram(labels) == {0: 1, 1: 3, 2: 1, 3: 1}
    assert label_cardinality_histogram(labels, target) == {2: 1, 3: 1}
    assert source_class_of(labels, source).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r'\[1\]'):
        source_class_of(labels, [1])
    split = domain_split(labels)
    assert split.num_source == 3 and split.num_target == 2
    assert split.unlabeled_idx.tolist() == [2]  # no label: in neither domain
    assert split.single_label_counts.tolist() == [1, 1, 1]
    assert split.multi_label_counts.tolist() == [1, 2, 2]
    with pytest.raises(ValueError, match='shape'):
        split_domains(np.zeros(4))


def test_real_voc_train_aug(voc_labels):
    split = domain_split(voc_labels['train_aug'])
    assert (split.num_source, split.num_target) == (6249, 4333)
    assert split.target_histogram == {2: 3104, 3: 969, 4: 210, 5: 46, 6: 4}
    counts = split.single_label_counts
    assert counts.min() == 21 and VOC_CLASSES[int(counts.argmin())] == 'diningtable'
    assert counts.max() == 958 and VOC_CLASSES[int(counts.argmax())] == 'person'
    assert counts.sum() == 6249
    assert len(split.unlabeled_idx) == 0


def test_real_voc_train(voc_labels):
    source, target = split_domains(voc_labels['train'])
    assert (len(source), len(target)) == (933, 531)
