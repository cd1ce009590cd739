"""Tests of csd_mm/refine/functional/stride_grid.py on hand-computed numbers (H = 13, W = 10, stride 8: the grid
is 2 x 2 and covers the padded 16 x 16 pixels)."""
import pytest
import torch

from csd_mm.refine.functional import grid_size, map_stride, pool_to_grid, upsample_from_grid


def test_grid_size():
    assert grid_size((13, 10), 8) == (2, 2)
    assert grid_size((16, 8), 8) == (2, 1)
    assert grid_size((13, 10), 1) == (13, 10)
    with pytest.raises(ValueError, match='cell must be >= 1'):
        grid_size((13, 10), 0)


def test_pool_to_grid_counts_padding_as_zero():
    maps = torch.ones(1, 13, 10)
    # cell (0, 0): 64 image pixels; (0, 1): 8 rows x 2 columns = 16 of 64; (1, 0): 5 x 8 = 40; (1, 1): 5 x 2 = 10
    expected = torch.tensor([[[64, 16], [40, 10]]]) / 64
    torch.testing.assert_close(pool_to_grid(maps, 8), expected)
    # a hot block on pixels [8, 13) x [8, 10) (the bottom-right edge) lands in cell (1, 1) only
    maps = torch.zeros(1, 13, 10)
    maps[0, 8:13, 8:10] = 0.64
    torch.testing.assert_close(pool_to_grid(maps, 8), torch.tensor([[[0.0, 0.0], [0.0, 0.1]]]))
    torch.testing.assert_close(pool_to_grid(maps, 1), maps)
    assert pool_to_grid(torch.ones(2, 16, 8), 8).shape == (2, 2, 1)  # already a multiple: no padding
    with pytest.raises(ValueError, match='cell must be >= 1'):
        pool_to_grid(maps, 0)
    with pytest.raises(ValueError, match=r'\(L, H, W\)'):
        pool_to_grid(torch.zeros(13, 10), 8)


def test_upsample_from_grid_then_crop():
    grid = torch.tensor([[[0.0, 8.0], [0.0, 8.0]]])  # columns 0 | 8
    up = upsample_from_grid(grid, 8, (13, 10))
    assert up.shape == (1, 13, 10)
    # align_corners=False: pixel x samples grid column (x + 0.5) / 8 - 0.5, clamped to [0, 1]; x <= 3 is 0,
    # x = 4..9 is 8 * (x - 3.5) / 8 = x - 3.5 (the full 16 columns would reach 8 from x = 12)
    expected_row = torch.tensor([0, 0, 0, 0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    torch.testing.assert_close(up[0], expected_row.expand(13, 10))
    rows = upsample_from_grid(torch.tensor([[[0.0], [8.0]]]), 8, (13, 3))[0, :, 0]  # the same along the rows
    torch.testing.assert_close(rows, torch.tensor([0, 0, 0, 0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.0]))
    torch.testing.assert_close(upsample_from_grid(grid, 1, (2, 1)), grid[:, :, :1])  # cell 1: a crop only
    with pytest.raises(ValueError, match=r'covers \(16, 16\) pixels, less than the asked \(17, 10\)'):
        upsample_from_grid(grid, 8, (17, 10))


def test_map_stride():
    assert map_stride((16, 24), (2, 3), 'here') == 8
    assert map_stride((16, 24), (16, 24), 'here') == 1
    with pytest.raises(ValueError, match=r'here: the map \(3, 3\) is not the padded input \(16, 24\)'):
        map_stride((16, 24), (3, 3), 'here')
    with pytest.raises(ValueError, match='integer stride'):
        map_stride((16, 24), (2, 4), 'here')
