"""Tests for csd_mm.datasets.cooccurrence (COR, CSD BMVC 2023 Sec. 3.2 / Eq. 1)."""
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from csd_mm.datasets.cooccurrence import (CORSampler, cooccurrence_counts, cooccurrence_probs,
                                          target_class_distribution)
from csd_mm.datasets.domain import split_domains
from csd_mm.datasets.labels import VOC_CLASSES, labels_for_split, load_cls_labels, read_split

VOC12 = Path(__file__).resolve().parents[2] / 'voc12'  # the project's tracked copy of the VOC labels
ALPHA = 1e-3

# rows 1, 2: single class 0; row 6: single class 2; row 4: no label; class 1 never appears alone
LABELS = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 1]], np.float32)


@pytest.fixture(scope='module')
def voc_train_aug():
    labels = load_cls_labels(VOC12 / 'cls_labels.npz')
    return labels_for_split(labels, read_split(VOC12 / 'train_aug.txt'), 20)


def test_counts_hand_example():
    assert cooccurrence_counts(LABELS).tolist() == [[2, 2, 1], [2, 0, 2], [1, 2, 1]]
    assert cooccurrence_counts(LABELS, include_self=False).tolist() == [[0, 2, 1], [2, 0, 2], [1, 2, 0]]
    assert cooccurrence_counts(LABELS).dtype == np.int64


def test_probs_hand_example():
    probs = cooccurrence_probs(cooccurrence_counts(LABELS))
    np.testing.assert_allclose(probs, [[0.4, 0.4, 0.2], [0.5, 0, 0.5], [0.25, 0.5, 0.25]])
    probs = cooccurrence_probs(cooccurrence_counts(LABELS, include_self=False))
    np.testing.assert_allclose(probs, [[0, 2 / 3, 1 / 3], [0.5, 0, 0.5], [1 / 3, 2 / 3, 0]])
    # a class that never occurs keeps a zero row (no NaN)
    with_empty = np.concatenate([LABELS, np.zeros((len(LABELS), 1), np.float32)], axis=1)
    probs = cooccurrence_probs(cooccurrence_counts(with_empty))
    assert probs[3].tolist() == [0, 0, 0, 0] and not np.isnan(probs).any()
    with pytest.raises(ValueError, match='square'):
        cooccurrence_probs(np.ones((2, 3)))


def test_target_class_distribution_hand_example():
    probs = cooccurrence_probs(cooccurrence_counts(LABELS))
    has_source = np.array([True, False, True])
    # weights P[0] + P[1] = [0.9, 0.4, 0.7]; class 1 has no source -> [0.9, 0, 0.7] / 1.6
    dist = target_class_distribution(probs, np.array([1, 1, 0]), has_source)
    np.testing.assert_allclose(dist, [0.5625, 0, 0.4375])
    # all weights zero -> uniform over classes with a source image
    probs4 = np.zeros((4, 4))
    probs4[0, 1] = 1.0
    dist = target_class_distribution(probs4, np.array([0, 0, 0, 1]), np.array([True, True, False, True]))
    np.testing.assert_allclose(dist, [1 / 3, 1 / 3, 0, 1 / 3])
    dist = target_class_distribution(probs4, np.array([1, 0, 0, 0]), np.array([True, False, True, True]))
    np.testing.assert_allclose(dist, [1 / 3, 0, 1 / 3, 1 / 3])  # only weight was on a sourceless class
    with pytest.raises(ValueError, match='no class has a single-label'):
        target_class_distribution(probs, np.array([1, 1, 0]), np.zeros(3, bool))
    with pytest.raises(ValueError, match='shape mismatch'):
        target_class_distribution(probs, np.array([1, 1]), has_source)


def test_real_voc_horse_person(voc_train_aug):
    probs = cooccurrence_probs(cooccurrence_counts(voc_train_aug, include_self=False))
    horse, person = VOC_CLASSES.index('horse'), VOC_CLASSES.index('person')
    assert probs[horse, person] == pytest.approx(0.81, abs=0.005)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_sampler_source_ids_and_classes():
    sampler = CORSampler.from_labels(LABELS, rng=0, class_names=['a', 'b', 'c'])
    assert sampler.has_source.tolist() == [True, False, True]
    draws = [sampler.sample(np.array([1, 1, 0])) for _ in range(300)]
    for cls_id, idx in draws:
        assert cls_id in (0, 2)  # class 1 has no single-label image: never drawn
        assert idx in ({1, 2} if cls_id == 0 else {6})  # dataset rows of that class's source images
    assert {c for c, _ in draws} == {0, 2}
    with pytest.raises(ValueError, match=r'class 1 \(b\) has no single-label'):
        sampler.sample_from_class(1)
    with pytest.raises(ValueError, match="sampling must be"):
        CORSampler.from_labels(LABELS, sampling='random')


def test_sampler_matches_distribution_chi_square(voc_train_aug):
    sampler = CORSampler.from_labels(voc_train_aug, rng=np.random.default_rng(0), class_names=VOC_CLASSES)
    target = np.zeros(20, np.float32)
    target[[VOC_CLASSES.index('horse'), VOC_CLASSES.index('person')]] = 1
    expected = sampler.class_distribution(target)
    np.testing.assert_allclose(expected.sum(), 1.0)
    draws = [sampler.sample(target) for _ in range(20000)]
    classes = np.array([c for c, _ in draws])
    source_idx, _ = split_domains(voc_train_aug)
    rows = np.array([i for _, i in draws])
    assert np.isin(rows, source_idx).all()
    assert (voc_train_aug[rows, classes] == 1).all()  # the drawn image is a single-label image of the class
    observed = np.bincount(classes, minlength=20)
    keep = expected > 0
    assert observed[~keep].sum() == 0
    _, p = stats.chisquare(observed[keep], expected[keep] * len(draws))
    assert p > ALPHA
    # and the test has power: a plain "uniform over classes" law is rejected
    _, p_wrong = stats.chisquare(observed[keep], np.full(keep.sum(), len(draws) / keep.sum()))
    assert p_wrong < ALPHA


def test_sampler_uniform_mode_and_within_class(voc_train_aug):
    source_idx, _ = split_domains(voc_train_aug)
    sampler = CORSampler.from_labels(voc_train_aug, rng=1, sampling='uniform')
    dist = sampler.class_distribution(np.ones(20))
    np.testing.assert_allclose(dist, voc_train_aug[source_idx].sum(0) / len(source_idx))
    classes = np.array([sampler.sample(np.ones(20))[0] for _ in range(20000)])
    _, p = stats.chisquare(np.bincount(classes, minlength=20), dist * len(classes))
    assert p > ALPHA
    # uniform over the source images of one class (diningtable: 21 images)
    cor = CORSampler.from_labels(voc_train_aug, rng=2)
    rows = np.array([cor.sample_from_class(VOC_CLASSES.index('diningtable')) for _ in range(4200)])
    values, counts = np.unique(rows, return_counts=True)
    assert len(values) == 21
    _, p = stats.chisquare(counts)
    assert p > ALPHA


def test_sampler_explicit_source_classes():
    probs = cooccurrence_probs(cooccurrence_counts(LABELS))
    sampler = CORSampler(np.array([0, 2, 0]), probs, rng=3, source_ids=[10, 20, 30])
    cls_id, sid = sampler.sample(np.array([0, 0, 1]))
    assert (cls_id, sid) in {(0, 10), (0, 30), (2, 20)}
    multi_hot = np.array([[1, 0, 0], [0, 0, 1]])
    assert CORSampler(multi_hot, probs).source_classes.tolist() == [0, 2]
    with pytest.raises(ValueError, match='not single-label'):
        CORSampler(np.array([[1, 1, 0]]), probs)
    with pytest.raises(ValueError, match='2 source_ids for 3'):
        CORSampler(np.array([0, 2, 0]), probs, source_ids=[1, 2])


class _Records(logging.Handler):
    """Collects the records of mmengine's current logger (it does not propagate to pytest's caplog)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_classes_without_source_image_warned_once_and_never_drawn():
    from mmengine.logging import MMLogger
    # 5 classes; classes 1 and 3 have no single-label image (COCO has several such classes)
    labels = np.array([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 0, 0, 0], [0, 1, 0, 1, 0],
                       [0, 0, 1, 1, 0]], np.float32)
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        sampler = CORSampler.from_labels(labels, rng=0, class_names=['a', 'b', 'c', 'd', 'e'])
        drawn = {sampler.sample(row)[0] for row in labels for _ in range(200)}
        uniform = CORSampler.from_labels(labels, rng=0, sampling='uniform')
        drawn |= {uniform.sample(row)[0] for row in labels for _ in range(50)}
    finally:
        logger.removeHandler(records)
    assert drawn == {0, 2, 4}
    # a target of the two source-less classes still gets a source image of another class
    assert sampler.class_distribution(labels[4])[[1, 3]].tolist() == [0.0, 0.0]
    ours = [m for m in records.messages if m.startswith('CORSampler')]
    assert ours[0] == 'CORSampler: no single-label (source) image of class(es) 1 (b), 3 (d); they are never pasted'
    assert len(ours) == 2  # once per sampler: its two samplers, no warning per draw
