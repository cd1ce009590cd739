"""COR on COCO-like labels (csd_mm/datasets/cooccurrence.py): classes with no single-label (source) image, and
classes with no image at all, are never drawn; a target whose classes co-occur only with such classes falls back
to uniform over the classes that have a source image. Hand-computed on a 7-class case, then at COCO's 80."""
import numpy as np

from csd_mm.datasets.cooccurrence import CORSampler, cooccurrence_counts, cooccurrence_probs

# rows: single 0; {0, 1}; {1, 2}; {2, 3}; single 3; {4, 5}; class 6 has no image
LABELS = np.array([
    [1, 0, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 0, 0],
    [0, 0, 1, 1, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 0],
    [0, 0, 0, 0, 1, 1, 0],
], np.float32)


def test_hand_computed_distributions_skip_classes_without_source():
    # N (diagonal: single-label counts 1, 0, 0, 1, 0, 0, 0); P = N / row sum
    counts = cooccurrence_counts(LABELS)
    assert counts[0].tolist() == [1, 1, 0, 0, 0, 0, 0] and counts[6].tolist() == [0] * 7
    probs = cooccurrence_probs(counts)
    np.testing.assert_allclose(probs[2], [0, .5, 0, .5, 0, 0, 0])
    np.testing.assert_allclose(probs[6], 0)  # a class without any image: an all-zero row, no division by 0
    sampler = CORSampler.from_labels(LABELS, rng=0)
    assert sampler.has_source.tolist() == [True, False, False, True, False, False, False]
    # {1, 2}: P1 + P2 = [.5, .5, .5, .5, 0, 0, 0], kept on classes 0 and 3 -> [.5, 0, 0, .5]
    np.testing.assert_allclose(sampler.class_distribution(LABELS[2]), [.5, 0, 0, .5, 0, 0, 0])
    # {2, 3}: P2 + P3 = [0, .5, .5, 1, 0, 0, 0] -> only class 3
    np.testing.assert_allclose(sampler.class_distribution(LABELS[3]), [0, 0, 0, 1, 0, 0, 0])
    # {4, 5} co-occur only with each other (no source image): uniform over the classes with one
    np.testing.assert_allclose(sampler.class_distribution(LABELS[5]), [.5, 0, 0, .5, 0, 0, 0])


def test_coco_sized_labels_draw_only_classes_with_a_source_image():
    rng = np.random.default_rng(0)
    labels = np.zeros((2000, 80), np.float32)
    # classes 0..9 common, 10..39 only in multi-label images, 40..79 absent (as the COCO-format toy)
    for row in labels:
        k = rng.integers(1, 4)
        row[rng.choice(10 if k == 1 else 40, size=k, replace=False)] = 1
    sampler = CORSampler.from_labels(labels, rng=1)
    assert sampler.has_source[:10].all() and not sampler.has_source[10:].any()
    targets = labels[labels.sum(1) >= 2]
    drawn = np.array([sampler.sample(t)[0] for t in targets[:500]])
    assert drawn.max() < 10
    sources = np.array([sampler.sample(t)[1] for t in targets[:200]])
    assert (labels[sources].sum(1) == 1).all()  # always a single-label image
