"""Tests of csd_mm.evaluation.functional.seed_sweep (seeds, one-pass threshold sweep, IoU)."""
import numpy as np
import pytest

from csd_mm.evaluation.functional.seed_sweep import (_max_argmax, confusion_to_iou, count_below,
                                                     default_thresholds, seed_from_cam, summarize_sweep,
                                                     sweep_confusion)


def _literal_seed(cam, keys, t):
    """The definition: argmax over [t, cam_1 .. cam_K] in float64, ties to the first entry (background)."""
    scores = np.concatenate([np.full((1,) + cam.shape[1:], t, np.float64), cam.astype(np.float64)])
    labels = np.concatenate([[0], np.asarray(keys, np.int64) + 1])
    return labels[np.argmax(scores, axis=0)]


def _confusion(seed, gt, num_classes, ignore_index=255):
    valid = gt != ignore_index
    idx = gt[valid].astype(np.int64) * num_classes + seed[valid].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _straightforward(cam, keys, gt, num_classes, thresholds, ignore_index=255):
    return np.stack([_confusion(seed_from_cam(cam, keys, t), gt, num_classes, ignore_index) for t in thresholds])


def test_default_thresholds_exact():
    t = default_thresholds()
    assert t.dtype == np.float64 and t.shape == (60,)
    assert t.tolist() == [i / 100 for i in range(60)]


def test_seed_from_cam_hand_example():
    cam = np.array([[[0.5, 0.2, 0.0, 0.7]],
                    [[0.5, 0.3, 0.0, 0.1]]], np.float32)
    keys = np.array([1, 4])
    # pixel 0: tie between the maps -> first (key 1, value 2); pixel 1: key 4 wins; pixel 2: all below t.
    assert seed_from_cam(cam, keys, 0.25).tolist() == [[2, 5, 0, 2]]
    # tie with the background score goes to background
    assert seed_from_cam(cam, keys, 0.5).tolist() == [[0, 0, 0, 2]]
    assert seed_from_cam(cam, keys, 0.5).dtype == np.uint8
    assert seed_from_cam(np.zeros((0, 2, 3), np.float32), np.zeros(0, np.int64), 0.0).tolist() == [[0] * 3] * 2


@pytest.mark.parametrize('dtype', [np.float64, np.float32, np.float16])
def test_seed_from_cam_matches_definition(dtype):
    rng = np.random.default_rng(0)
    # values drawn from the thresholds themselves: many ties between maps and with t
    cam = rng.choice(default_thresholds(), size=(3, 9, 11)).astype(dtype)
    keys = np.array([0, 6, 19])
    for t in default_thresholds():
        np.testing.assert_array_equal(seed_from_cam(cam, keys, t), _literal_seed(cam, keys, t))


def test_sweep_hand_example():
    cam = np.array([[[0.0, 0.2, 0.5, 0.2]]])
    keys = np.array([2])  # mask value 3
    gt = np.array([[0, 3, 3, 255]])
    conf = sweep_confusion(cam, keys, gt, 4, [0.1, 0.2, 0.3])
    expected = np.zeros((3, 4, 4), np.int64)
    expected[0, 0, 0], expected[0, 3, 3] = 1, 2                      # seeds 0 3 3 (x)
    expected[1, 0, 0], expected[1, 3, 0], expected[1, 3, 3] = 1, 1, 1  # 0.2 ties -> background
    expected[2] = expected[1]
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(conf, expected)
    s = summarize_sweep(conf, [0.1, 0.2, 0.3])
    assert s['best_threshold'] == 0.1 and s['best_index'] == 0 and s['best_miou'] == 1.0
    assert s['curve'] == [(0.1, 1.0), (0.2, 0.5), (0.3, 0.5)]
    np.testing.assert_array_equal(s['per_class_iou'], [1.0, np.nan, np.nan, 1.0])


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('dtype', [np.float64, np.float32, np.float16])
def test_sweep_equals_straightforward(seed, dtype):
    rng = np.random.default_rng(seed)
    num_classes = 21
    thresholds = default_thresholds()
    for _ in range(5):
        k = int(rng.integers(0, 4))
        keys = np.sort(rng.choice(20, size=k, replace=False))
        h, w = rng.integers(1, 12, size=2)
        if rng.random() < 0.5:  # exactly on thresholds, lots of ties
            cam = rng.choice(np.concatenate([thresholds, [0.6, 1.0]]), size=(k, h, w)).astype(dtype)
        else:
            cam = rng.random((k, h, w)).astype(dtype)
        gt = rng.integers(0, num_classes, size=(h, w)).astype(np.uint8)
        gt[rng.random((h, w)) < 0.2] = 255
        got = sweep_confusion(cam, keys, gt, num_classes, thresholds)
        np.testing.assert_array_equal(got, _straightforward(cam, keys, gt, num_classes, thresholds))
        assert got.shape == (60, 21, 21)
        assert (got.sum(axis=(1, 2)) == (gt != 255).sum()).all()


def test_sweep_custom_thresholds_and_ignore_index():
    rng = np.random.default_rng(7)
    cam = rng.choice([0.0, 0.1, 0.3, 0.9], size=(2, 6, 6))
    keys = np.array([0, 3])
    gt = rng.integers(0, 5, size=(6, 6))
    gt[0] = 9  # used as the ignore value below
    thresholds = [0.0, 0.1, 0.1, 0.3, 0.95]
    got = sweep_confusion(cam, keys, gt, 5, thresholds, ignore_index=9)
    np.testing.assert_array_equal(got, _straightforward(cam, keys, gt, 5, thresholds, ignore_index=9))
    assert got.sum() == 5 * 30


def test_sweep_k0_all_background():
    gt = np.array([[0, 1, 255], [2, 2, 0]])
    conf = sweep_confusion(np.zeros((0, 2, 3), np.float32), [], gt, 3, [0.0, 0.5])
    expected = np.zeros((3, 3), np.int64)
    expected[:, 0] = [2, 1, 2]
    np.testing.assert_array_equal(conf, np.stack([expected, expected]))


def test_sweep_bad_input():
    cam = np.zeros((1, 2, 2))
    gt = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match='spatial shape'):
        sweep_confusion(cam, [0], np.zeros((3, 2)), 21, [0.1])
    with pytest.raises(ValueError, match='keys must have shape'):
        sweep_confusion(cam, [0, 1], gt, 21, [0.1])
    with pytest.raises(ValueError, match='NaN or inf'):
        sweep_confusion(np.full((1, 2, 2), np.nan), [0], gt, 21, [0.1])
    with pytest.raises(ValueError, match='outside'):
        sweep_confusion(cam, [0], np.full((2, 2), 30), 21, [0.1])
    with pytest.raises(ValueError, match='>= num_classes'):
        sweep_confusion(cam, [20], gt, 21, [0.1])
    with pytest.raises(ValueError, match='ascending'):
        sweep_confusion(cam, [0], gt, 21, [0.2, 0.1])


def test_confusion_to_iou_hand_examples():
    np.testing.assert_allclose(confusion_to_iou(np.array([[3, 1], [2, 4]])), [3 / 6, 4 / 7])
    # class 2 absent from gt and prediction -> NaN; class 1 predicted but absent from gt -> 0
    iou = confusion_to_iou(np.array([[2, 1, 0], [0, 0, 0], [0, 0, 0]]))
    np.testing.assert_array_equal(np.isnan(iou), [False, False, True])
    np.testing.assert_allclose(iou[:2], [2 / 3, 0.0])
    batched = confusion_to_iou(np.array([[[2, 0, 0], [1, 1, 0], [0, 0, 0]], [[3, 0, 0], [0, 2, 0], [0, 0, 1]]]))
    np.testing.assert_allclose(batched[0, :2], [2 / 3, 1 / 2])
    np.testing.assert_allclose(batched[1], [1.0, 1.0, 1.0])


def test_summarize_sweep_excludes_nan_and_picks_first_best():
    conf = np.array([[[2, 0, 0], [1, 1, 0], [0, 0, 0]],   # IoU 2/3, 1/2, NaN -> mIoU 7/12
                     [[3, 0, 0], [0, 2, 0], [0, 0, 0]],   # 1, 1, NaN -> 1
                     [[3, 0, 0], [0, 2, 0], [0, 0, 0]]])  # tie -> the first one wins
    s = summarize_sweep(conf, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(s['miou'], [7 / 12, 1.0, 1.0])
    assert s['best_index'] == 1 and s['best_threshold'] == 0.2 and s['best_miou'] == 1.0
    with pytest.raises(ValueError, match='no pixel'):
        summarize_sweep(np.zeros((1, 3, 3), np.int64), [0.1])
    with pytest.raises(ValueError, match='shape'):
        summarize_sweep(conf, [0.1, 0.2])


def test_max_argmax_hand_example_first_of_equal_maxima():
    cam = np.array([[[0.5, 0.2, 0.7]], [[0.5, 0.9, 0.1]], [[0.1, 0.9, 0.7]]], np.float32)  # (3, 1, 3)
    m, a = _max_argmax(cam)
    np.testing.assert_array_equal(m, np.float32([[0.5, 0.9, 0.7]]))
    np.testing.assert_array_equal(a, [[0, 1, 0]])  # ties: the first map wins, as np.argmax
    rng = np.random.default_rng(0)
    cam = rng.choice([0.0, 0.25, 0.5], size=(4, 30, 30)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(_max_argmax(cam)[1], np.argmax(cam, axis=0))
    with pytest.raises(ValueError, match='NaN or inf'):
        _max_argmax(np.array([[[0.1]], [[np.nan]]], np.float32))


def test_count_below_table_equals_binary_search_at_the_edges():
    """The float32 lookup table (used from 4,096 pixels) counts exactly as searchsorted on float64: values at,
    just above and just below each threshold, signed zeros, negatives, huge values and inf."""
    t = np.sort(np.concatenate([[-2.0, -0.0], default_thresholds(), [1 / 3, 1e20]]))
    edge = []
    for x in t.tolist() + [0.0, 1.0, np.inf, -np.inf, 3e38]:
        f = np.float32(x)
        edge += [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    rng = np.random.default_rng(0)
    m = np.concatenate([np.repeat(np.array(edge, np.float32), 50), rng.standard_normal(5000, np.float32),
                        rng.random(5000, np.float32)])
    rng.shuffle(m)
    assert m.size >= 4096
    np.testing.assert_array_equal(count_below(t, m), np.searchsorted(t, m.astype(np.float64), side='left'))
    assert count_below(np.array([0.5]), np.array([0.5, 0.5000001], np.float64)).tolist() == [0, 1]


@pytest.mark.parametrize('dtype', [np.float16, np.float32])
def test_sweep_equals_straightforward_on_a_large_image(dtype):
    """A VOC-like image (above the lookup-table size) with ignored pixels: the sweep equals per-threshold seeds."""
    rng = np.random.default_rng(3)
    keys = np.array([2, 7, 14])
    cam = rng.choice(np.arange(64) / 100, size=(3, 60, 80)).astype(dtype)  # values on the thresholds
    gt = rng.integers(0, 21, size=(60, 80)).astype(np.uint8)
    gt[:5] = 255
    t = default_thresholds()
    np.testing.assert_array_equal(sweep_confusion(cam, keys, gt, 21, t), _straightforward(cam, keys, gt, 21, t))
