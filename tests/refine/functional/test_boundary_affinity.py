"""Tests of csd_mm/refine/functional/boundary_affinity.py on hand-computed paths, affinities and random-walk steps."""
import pytest
import torch

import csd_mm  # noqa: F401
from csd_mm.refine.functional.affinity import pair_indices, search_offsets
from csd_mm.refine.functional.boundary_affinity import boundary_affinity, boundary_random_walk, line_path, line_paths


def _points(path):
    return sorted(map(tuple, path.tolist()))


def test_line_path_hand_computed():
    assert _points(line_path((0, 3))) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert _points(line_path((1, 1))) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # the whole 2x2 block
    assert _points(line_path((1, -1))) == [(0, -1), (0, 0), (1, -1), (1, 0)]
    # (2, 2): |px - py| <= 1 (squared distance (2px - 2py)^2 / 8 < 1); the two far corners are off the line
    assert _points(line_path((2, 2))) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]
    # (2, 3): (2px - 3py)^2 < 13
    assert _points(line_path((2, 3))) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3)]
    with pytest.raises(ValueError, match=r'\(0, 0\)'):
        line_path((0, 0))


def test_line_paths_follow_search_offsets():
    offsets = search_offsets(5)
    paths = line_paths(5)
    assert len(paths) == len(offsets) == 34
    for (dy, dx), path in zip(offsets, paths):
        pts = _points(path)
        assert (0, 0) in pts and (dy, dx) in pts  # both ends
        assert all(min(0, dy) <= y <= max(0, dy) and min(0, dx) <= x <= max(0, dx) for y, x in pts)


def test_affinity_of_a_row_hand_computed():
    b = torch.tensor([[0.0, 0.5, 0.2, 0.9]])
    # radius 3 on a 1x4 map: offsets (0, 1) then (0, 2); pairs 0-1, 1-2, 2-3, then 0-2, 1-3
    torch.testing.assert_close(boundary_affinity(b, 3), torch.tensor([0.5, 0.5, 0.1, 0.5, 0.1]))


def test_affinity_of_a_3x3_map_hand_computed():
    b = torch.tensor([[0.0, 0.9, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    # radius 2: offsets (0, 1), (1, -1), (1, 0), (1, 1); diagonal pairs take the max over their 2x2 block
    expected_pairs = [
        ((0, 0), (0, 1), 0.1), ((0, 1), (0, 2), 0.1), ((1, 0), (1, 1), 1.0), ((1, 1), (1, 2), 1.0),
        ((2, 0), (2, 1), 0.5), ((2, 1), (2, 2), 1.0),
        ((0, 1), (1, 0), 0.1), ((0, 2), (1, 1), 0.1), ((1, 1), (2, 0), 0.5), ((1, 2), (2, 1), 1.0),
        ((0, 0), (1, 0), 1.0), ((0, 1), (1, 1), 0.1), ((0, 2), (1, 2), 1.0), ((1, 0), (2, 0), 0.5),
        ((1, 1), (2, 1), 1.0), ((1, 2), (2, 2), 1.0),
        ((0, 0), (1, 1), 0.1), ((0, 1), (1, 2), 0.1), ((1, 0), (2, 1), 0.5), ((1, 1), (2, 2), 1.0),
    ]
    idx_from, idx_to = pair_indices(3, 3, 2)
    assert [(divmod(int(f), 3), divmod(int(t), 3)) for f, t in zip(idx_from, idx_to)] == \
        [(f, t) for f, t, _ in expected_pairs]  # the same pair layout as pair_indices
    aff = boundary_affinity(b, 2)
    torch.testing.assert_close(aff, torch.tensor([a for _, _, a in expected_pairs]))
    # (N, 1, h, w) batches give the same rows
    both = boundary_affinity(torch.stack([b, 1 - b])[:, None], 2)
    assert both.shape == (2, 20)
    torch.testing.assert_close(both[0], aff)


def test_affinity_matches_a_per_pair_loop_and_backpropagates():
    g = torch.Generator().manual_seed(0)
    b = torch.rand(2, 7, 9, generator=g, requires_grad=True)
    radius = 4
    aff = boundary_affinity(b, radius)
    idx_from, idx_to = pair_indices(7, 9, radius)
    paths = {tuple(d): p for d, p in zip(search_offsets(radius).tolist(), line_paths(radius))}
    expected = torch.empty(2, len(idx_from))
    for m, (f, t) in enumerate(zip(idx_from.tolist(), idx_to.tolist())):
        (fy, fx), (ty, tx) = divmod(f, 9), divmod(t, 9)
        pts = paths[(ty - fy, tx - fx)]
        expected[:, m] = 1 - b.detach()[:, fy + pts[:, 0], fx + pts[:, 1]].amax(dim=1)
    torch.testing.assert_close(aff, expected)
    aff.sum().backward()
    assert b.grad is not None and (b.grad <= 0).all() and (b.grad < 0).any()  # more boundary, less affinity


def test_affinity_bad_shape():
    with pytest.raises(ValueError, match='boundary must be'):
        boundary_affinity(torch.zeros(2, 3, 4, 5), 3)


def test_random_walk_one_step_hand_computed():
    # 1x2 map, B = [0, 0.5], beta 1, one step: x = s * (1 - B) = [1, 0.5]; a = 0.5, A = [[1, .5], [.5, 1]],
    # T = D^-1 A = [[2/3, 1/3], [1/3, 2/3]], T x = [5/6, 2/3]
    out = boundary_random_walk(torch.tensor([[0.0, 0.5]]), torch.ones(1, 1, 2), beta=1.0, exp_times=0, radius=2)
    torch.testing.assert_close(out, torch.tensor([[[5 / 6, 2 / 3]]]))
    # without the (1 - B) weighting a constant stays constant
    out = boundary_random_walk(torch.tensor([[0.0, 0.5]]), torch.ones(1, 1, 2), beta=1.0, exp_times=3, radius=2,
                               weight_by_boundary=False)
    torch.testing.assert_close(out, torch.ones(1, 1, 2))


def test_random_walk_stops_at_a_closed_boundary():
    boundary = torch.zeros(6, 9)
    boundary[:, 4] = 1.0  # a wall across the map
    scores = torch.zeros(2, 6, 9)
    scores[0, 1:3, 0:2] = 1.0  # left of the wall
    scores[1, 4:6, 7:9] = 1.0  # right of the wall
    out = boundary_random_walk(boundary, scores, beta=10, exp_times=6, radius=4)
    assert torch.all(out[0, :, 5:] == 0) and torch.all(out[1, :, :4] == 0)  # nothing crosses the wall
    assert torch.all(out[0, :, :4] > 0) and torch.all(out[1, :, 5:] > 0)  # each side is filled
    # without the wall the first score reaches the right side
    open_out = boundary_random_walk(torch.zeros(6, 9), scores, beta=10, exp_times=6, radius=4)
    assert torch.all(open_out[0, :, 5:] > 0)


def test_random_walk_bad_shapes():
    with pytest.raises(ValueError, match='share'):
        boundary_random_walk(torch.zeros(4, 5), torch.zeros(2, 4, 6))
