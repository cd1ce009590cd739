"""Tests of csd_mm/refine/functional/crf.py: dense CRF on synthetic images (edges, shapes, keys, confident regions)."""
import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.refine.functional.crf import cam_label_scores, confident_regions, crf_refine_cam, dense_crf

H, W, EDGE = 32, 32, 16


def _edge_image():
    """Dark left half, bright right half: the object (right half) ends at column EDGE."""
    x = np.arange(W)[None].repeat(H, 0)
    img = np.where(x >= EDGE, 220, 30).astype(np.uint8)[..., None].repeat(3, axis=2)
    return img, x


def test_crf_moves_blurry_boundary_to_image_edge():
    img, x = _edge_image()
    # blurry foreground probability whose 0.5 crossing (column 12) misses the image edge (column 16)
    cam = (1 / (1 + np.exp(-(x - 12) / 3.0)))[None].astype(np.float32)
    gt = x >= EDGE
    seed = cam[0] > 0.5
    mask = crf_refine_cam(img, cam, np.array([3]), bg_threshold=0.5)
    seed_err = np.mean(seed != gt)
    crf_err = np.mean((mask == 4) != gt)
    assert seed_err == pytest.approx(3 / 32)  # columns 13, 14, 15 wrong
    assert crf_err < seed_err / 2
    assert set(np.unique(mask).tolist()) == {0, 4}


def test_dense_crf_shapes_and_normalisation():
    img, x = _edge_image()
    p = np.stack([1 - x / W, x / W, np.full((H, W), 0.2)]).astype(np.float32)
    q = dense_crf(img, p, n_iters=3)
    assert q.shape == (3, H, W) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match='probs must be'):
        dense_crf(img, p[:, :5])
    with pytest.raises(ValueError, match='uint8'):
        dense_crf(img.astype(np.float32), p)


def test_cam_label_scores_background_modes():
    cam = np.array([[[0.0, 0.5]], [[0.25, 1.0]]], dtype=np.float32)  # (2, 1, 2)
    power = cam_label_scores(cam, alpha=2)
    np.testing.assert_allclose(power[0], [[0.75**2, 0.0]])  # (1 - max) ** alpha
    np.testing.assert_allclose(power[1:], cam)
    const = cam_label_scores(cam, bg_threshold=0.3)
    np.testing.assert_allclose(const[0], [[0.3, 0.3]])


def test_keys_map_to_mask_values():
    img, x = _edge_image()
    y = np.arange(H)[:, None].repeat(W, 1)
    cam = np.stack([(x >= EDGE) & (y < H // 2), (x >= EDGE) & (y >= H // 2)]).astype(np.float32) * 0.9
    mask = crf_refine_cam(img, cam, np.array([4, 13]), bg_threshold=0.3, n_iters=5)
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    assert set(np.unique(mask).tolist()) == {0, 5, 14}
    assert np.all(mask[:, :EDGE - 2] == 0)
    assert np.all(mask[:H // 2 - 3, EDGE + 2:] == 5) and np.all(mask[H // 2 + 3:, EDGE + 2:] == 14)
    # no classes: all background
    assert not crf_refine_cam(img, np.zeros((0, H, W), np.float32), np.zeros(0, np.int64)).any()
    with pytest.raises(ValueError, match='keys'):
        crf_refine_cam(img, cam, np.array([1]))


def test_confident_regions_marks_unsure_pixels():
    img, x = _edge_image()
    # strong on the object, zero far from it, middling in a band left of the edge
    cam = np.where(x >= EDGE, 0.95, np.where(x >= EDGE - 6, 0.4, 0.0))[None].astype(np.float32)
    label = confident_regions(img, cam, np.array([6]), low_alpha=4, high_alpha=32, n_iters=5)
    assert set(np.unique(label).tolist()) <= {0, 7, 255}
    assert np.all(label[:, EDGE + 2:] == 7)  # confident foreground
    assert np.all(label[:, :EDGE - 8] == 0)  # confident background
    assert (label == 255).any()  # the two CRFs disagree somewhere
    with pytest.raises(ValueError, match='low_alpha'):
        confident_regions(img, cam, np.array([6]), low_alpha=32, high_alpha=4)



def test_dense_crf_labels_unary_keeps_labels_and_pairwise_removes_an_isolated_pixel():
    from csd_mm.refine.functional.crf import dense_crf_labels
    img = np.full((16, 16, 3), 100, np.uint8)
    labels = np.zeros((16, 16), np.int64)
    labels[5, 5] = 1
    # no iteration: the unary alone, -log 0.7 = 0.36 for the given label vs -log 0.3 = 1.20 for the other
    kept = dense_crf_labels(img, labels, 2, n_iters=0)
    assert kept.shape == (16, 16) and kept.tolist() == labels.tolist()
    # one iteration: the Gaussian kernel (compat 3, sxy 3) sums to ~3 * 2 * pi * 9 ~ 170 over the neighbours, all
    # labelled 0 with Q = 0.7, which outweighs the unary difference 0.85 of the lone pixel by far
    assert dense_crf_labels(img, labels, 2, n_iters=1).sum() == 0
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\)'):
        dense_crf_labels(img, labels + 1, 2)
    with pytest.raises(ValueError, match='n_labels must be >= 2'):
        dense_crf_labels(img, labels * 0, 1)
    with pytest.raises(ValueError, match='gt_prob'):
        dense_crf_labels(img, labels, 2, gt_prob=1.0)


def test_combine_irn_confident_rules():
    from csd_mm.refine.functional.crf import combine_irn_confident
    fg_conf = np.array([[0, 0, 3, 3, 0, 0]])
    bg_conf = np.array([[0, 3, 3, 0, 5, 0]])
    # both 0 -> 0; fg 0 but bg not -> unsure; fg kept wherever it is foreground, even where bg_conf says 0
    # (column 3: PSA's combination would give 0 there)
    assert combine_irn_confident(fg_conf, bg_conf).tolist() == [[0, 255, 3, 3, 255, 0]]
    assert combine_irn_confident(fg_conf, bg_conf).dtype == np.uint8
    with pytest.raises(ValueError, match='differ in shape'):
        combine_irn_confident(fg_conf, bg_conf[:, :3])


def test_irn_confident_regions_thresholds_ties_and_keys():
    from csd_mm.refine.functional.crf import irn_confident_regions
    img = np.full((1, 6, 3), 100, np.uint8)
    cam = np.array([[[0.9, 0.2, 0.0, 0.3, 0.05, 0.4]],
                    [[0.1, 0.1, 0.04, 0.0, 0.05, 0.6]]], np.float32)
    # n_iters=0: the CRF keeps the thresholded labels, so the thresholds 0.30 / 0.05 alone decide:
    # col 0: class 4 above both -> 5; col 1: 0.2 only above 0.05 -> unsure; col 2: under both -> 0;
    # col 3: 0.3 ties with the 0.30 background (ties go to background, float32 as IRN) but is above 0.05 -> unsure;
    # col 4: ties with 0.05 -> background in both -> 0; col 5: class 13 wins -> 14
    label = irn_confident_regions(img, cam, np.array([4, 13]), n_iters=0)
    assert label.dtype == np.uint8 and label.tolist() == [[5, 255, 0, 255, 0, 14]]
    assert irn_confident_regions(img, cam[:0], np.zeros(0, np.int64)).tolist() == [[0] * 6]  # no class
    with pytest.raises(ValueError, match='conf_bg'):
        irn_confident_regions(img, cam, np.array([4, 13]), conf_fg=0.05, conf_bg=0.3)


def test_irn_confident_regions_label_crf_follows_the_image():
    from csd_mm.refine.functional.crf import irn_confident_regions
    img, x = _edge_image()
    # strong CAM on the object (right of EDGE), weak (0.1: between the thresholds) on 8 dark columns left of it
    cam = np.where(x >= EDGE, 0.9, np.where(x >= EDGE - 8, 0.1, 0.0))[None].astype(np.float32)
    unsmoothed = irn_confident_regions(img, cam, np.array([6]), n_iters=0)
    assert unsmoothed[0].tolist() == [0] * 8 + [255] * 8 + [7] * 16
    # the label CRF of the low threshold gives the weak dark band to the dark background: confident background
    label = irn_confident_regions(img, cam, np.array([6]))
    assert label.tolist() == [[0] * EDGE + [7] * (W - EDGE)] * H
