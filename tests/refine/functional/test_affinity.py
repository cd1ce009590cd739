"""Tests of csd_mm/refine/functional/affinity.py: PSA pairs, labels, loss, affinity matrix and random walk."""
import math

import numpy as np
import pytest
import torch

import csd_mm  # noqa: F401
from csd_mm.refine.functional.affinity import (affinity_labels, affinity_loss, affinity_matrix, feature_affinity,
                                    pair_indices, random_walk, random_walk_refine, search_offsets,
                                    transition_matrix)


def test_search_offsets_follow_psa():
    assert len(search_offsets(5)) == 34  # PSA's 34 directions
    assert search_offsets(2).tolist() == [[0, 1], [1, -1], [1, 0], [1, 1]]
    assert search_offsets(1).shape == (0, 2)
    # radius 3: dx^2 + dy^2 < 9 -> |dx| <= 2 for dy = 1 and dy = 2
    assert search_offsets(3).tolist() == [[0, 1], [0, 2], [1, -2], [1, -1], [1, 0], [1, 1], [1, 2], [2, -2],
                                          [2, -1], [2, 0], [2, 1], [2, 2]]


def test_pair_indices_4x4():
    f, t = pair_indices(4, 4, 1)
    assert f.size == 0 and t.size == 0  # radius 1: no offset strictly inside
    f, t = pair_indices(4, 4, 2)
    assert len(f) == 12 + 9 + 12 + 9  # (0,1): 4x3, (1,-1): 3x3, (1,0): 3x4, (1,1): 3x3
    # offset (0, 1): every horizontal neighbour, row-major
    assert f[:12].tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]
    assert (t[:12] - f[:12]).tolist() == [1] * 12
    # offset (1, -1): from rows 0..2, columns 1..3, to one row down, one column left
    assert f[12:21].tolist() == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    assert (t[12:21] - f[12:21]).tolist() == [3] * 9
    assert (t[21:33] - f[21:33]).tolist() == [4] * 12
    assert (t[33:] - f[33:]).tolist() == [5] * 9
    # every 8-neighbour pair exactly once
    pairs = {frozenset(p) for p in zip(f.tolist(), t.tolist())}
    assert len(pairs) == 42


def test_affinity_labels_hand_example():
    # 2x3 map, radius 2 -> 11 pairs
    label = np.array([[0, 0, 1],
                      [255, 1, 1]], dtype=np.uint8)
    f, t = pair_indices(2, 3, 2)
    assert list(zip(f.tolist(), t.tolist())) == [(0, 1), (1, 2), (3, 4), (4, 5),  # (0, 1)
                                                 (1, 3), (2, 4),  # (1, -1)
                                                 (0, 3), (1, 4), (2, 5),  # (1, 0)
                                                 (0, 4), (1, 5)]  # (1, 1)
    bg, fg, neg = affinity_labels(label, radius=2)
    assert bg.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert fg.tolist() == [0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    assert neg.tolist() == [0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1]
    # a batch of two gives the same per map
    bg2, fg2, neg2 = affinity_labels(torch.from_numpy(np.stack([label, label])).long(), radius=2)
    assert bg2.shape == (2, 11) and torch.equal(fg2[1], fg) and torch.equal(neg2[0], neg)


def test_affinity_loss_hand_numbers():
    aff = torch.tensor([0.5, 0.9, 0.2, 1.0])
    bg = torch.tensor([1, 0, 0, 0], dtype=torch.bool)
    fg = torch.tensor([0, 0, 0, 1], dtype=torch.bool)
    neg = torch.tensor([0, 1, 1, 0], dtype=torch.bool)
    out = affinity_loss(aff, bg, fg, neg)
    assert out['bg_pos'].item() == pytest.approx(math.log(2), rel=1e-4)
    assert out['fg_pos'].item() == pytest.approx(0.0, abs=1e-4)
    assert out['neg'].item() == pytest.approx((-math.log(0.1) - math.log(0.8)) / 2, rel=1e-4)
    expected = math.log(2) / 4 + (-math.log(0.1) - math.log(0.8)) / 4
    assert out['loss'].item() == pytest.approx(expected, rel=1e-4)
    # an empty term contributes 0
    empty = affinity_loss(aff, bg, torch.zeros_like(fg), neg)
    assert empty['fg_pos'].item() == 0.0
    with pytest.raises(ValueError, match='shape'):
        affinity_loss(aff, bg[:2], fg, neg)


def test_feature_affinity_is_exp_of_mean_l1():
    feats = torch.tensor([[[[0.0, 1.0]], [[0.0, 3.0]]]])  # (1, C=2, 1, 2)
    aff = feature_affinity(feats, radius=2)
    assert aff.shape == (1, 1)
    assert aff.item() == pytest.approx(math.exp(-2.0))  # mean(|0-1|, |0-3|) = 2


def test_affinity_matrix_symmetric_with_unit_diagonal():
    a = affinity_matrix(torch.tensor([0.5, 0.25]), np.array([0, 1]), np.array([1, 2]), 3, beta=2).to_dense()
    expected = torch.tensor([[1, 0.25, 0], [0.25, 1, 0.0625], [0, 0.0625, 1]])
    torch.testing.assert_close(a, expected)
    t = transition_matrix(a)
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    torch.testing.assert_close(t[1], expected[1] / expected[1].sum())


def _block_diagonal():
    a = torch.zeros(5, 5)
    a[:2, :2] = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    a[2:, 2:] = torch.tensor([[1.0, 0.8, 0.2], [0.8, 1.0, 0.3], [0.2, 0.3, 1.0]])
    return a


def test_random_walk_stays_within_blocks_and_preserves_mass():
    a = _block_diagonal()
    t = transition_matrix(a)
    fg = torch.tensor([1.0, 0.0, 0.0, 0.6, 0.0])
    scores = torch.stack([1 - fg, fg])  # per-position normalised two-label scores
    out = random_walk(scores, t, logt=3)
    # label 1 spread inside block {0, 1}: position 1 gains, and block {2, 3, 4} keeps only its own mass
    assert out[1, 1] > 0 and out[1, 0] < 1
    deg = a.sum(1)
    for block in (slice(0, 2), slice(2, 5)):  # degree-weighted mass is conserved in every block
        assert (deg[block] * out[1, block]).sum().item() == pytest.approx(
            (deg[block] * scores[1, block]).sum().item(), rel=1e-5)
    torch.testing.assert_close(out.sum(0), torch.ones(5))  # normalised scores stay normalised
    # many steps: each block converges to its degree-weighted mean
    far = random_walk(scores, t, logt=10)
    torch.testing.assert_close(far[1, :2], torch.full((2, ), 0.5), atol=1e-4, rtol=0)
    mean2 = ((deg[2:] * fg[2:]).sum() / deg[2:].sum()).item()
    torch.testing.assert_close(far[1, 2:], torch.full((3, ), mean2), atol=1e-4, rtol=0)
    # sparse and dense transition matrices agree
    sparse = random_walk(scores, transition_matrix(a.to_sparse()), logt=3)
    torch.testing.assert_close(sparse, out)
    # logt = 0 is one step
    torch.testing.assert_close(random_walk(scores, t, logt=0), (t @ scores.t()).t())


def test_random_walk_refine_respects_feature_boundaries():
    # embedding: two regions far apart in feature space -> no walk across columns 3 | 4
    feats = torch.zeros(4, 6, 8)
    feats[:, :, 4:] = 10.0
    scores = torch.zeros(2, 6, 8)
    scores[0] = 0.2  # constant background
    scores[1, 2, 1] = 1.0  # one confident foreground position in the left region
    out = random_walk_refine(feats, scores, beta=8, logt=4, radius=3)
    assert out.shape == (2, 6, 8)
    torch.testing.assert_close(out[0], torch.full((6, 8), 0.2))  # a constant is unchanged
    assert (out[1, :, :4] > 0).all()  # spread over the left region
    assert out[1, :, 4:].abs().max() < 1e-12  # nothing crosses the feature boundary
    with pytest.raises(ValueError, match='share'):
        random_walk_refine(feats, scores[:, :3])


def test_resize_labels_keeps_label_values():
    from csd_mm.refine.functional.affinity import resize_labels
    labels = torch.tensor([[[0, 0, 3, 3], [0, 0, 3, 3], [255, 255, 1, 1], [255, 255, 1, 1]]])
    small = resize_labels(labels, (2, 2))
    assert small.dtype == torch.long and small.tolist() == [[[0, 3], [255, 1]]]


def test_resize_labels_takes_the_centre_pixel_of_each_cell_as_pil_nearest():
    from PIL import Image
    from csd_mm.refine.functional.affinity import resize_labels
    # 8x8 map whose value is its flat index: the 2x2 reduction must sample pixels (2, 2), (2, 6), (6, 2), (6, 6)
    # (the centre 4i + 2 of each 4x4 cell, IRN's pil_rescale(label, 0.25, 0)), not the top-left (0, 0) ...
    labels = torch.arange(64).reshape(1, 8, 8)
    small = resize_labels(labels, (2, 2))
    assert small.tolist() == [[[18, 22], [50, 54]]]
    pil = np.asarray(Image.fromarray(labels[0].numpy().astype(np.uint8)).resize((2, 2), Image.NEAREST))
    assert small[0].tolist() == pil.tolist()


def test_pair_loss_is_affinity_loss_on_the_pair_labels():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from csd_mm.refine.functional.affinity import confident_label_maps, pair_loss
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.tensor([[[0, 0, 2]]])))
    labels = confident_label_maps([sample], 'test')
    assert labels.shape == (1, 1, 3)
    # radius 2 on a 1x3 grid: pairs (0,1) background positive, (1,2) negative; (0,2) is outside the radius
    aff = torch.full_like(pair_loss_aff_shape(labels), 0.5)
    out = pair_loss(aff, labels, radius=2)
    eps = 1e-5
    expected = -np.log(0.5 + eps) / 4 + -np.log(0.5 + eps) / 2
    assert float(out['loss_aff']) == pytest.approx(expected, rel=1e-4)
    assert float(out['aff_fg_pos']) == 0.0 and not out['aff_neg'].requires_grad
    with pytest.raises(ValueError, match='test: loss mode needs data samples with gt_sem_seg'):
        confident_label_maps([SegDataSample()], 'test')


def pair_loss_aff_shape(labels):
    from csd_mm.refine import affinity_labels
    return affinity_labels(labels, 2)[0].float()
