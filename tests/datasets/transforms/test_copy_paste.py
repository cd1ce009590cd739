"""Tests of the registered CopyPaste transform (csd_mm/datasets/transforms/copy_paste.py)."""
import numpy as np
import pytest

import csd_mm  # noqa: F401  (compat first, registers the transform)
from csd_mm.datasets.transforms import CopyPaste
from csd_mm.datasets.transforms.copy_paste import resolve_blend_prob
from mmseg.registry import TRANSFORMS

H, W = 4, 5


def _results():
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 1, 2, 3                       # x_m: (1, 2, 3) everywhere
    src = (np.arange(H * W * 3).reshape(H, W, 3) + 50).astype(np.uint8)  # x_s: distinct pixels
    fg = np.zeros((H, W), dtype=np.uint8)
    fg[1:3, 1:4] = 1
    bg = np.zeros((H, W), dtype=np.uint8)
    bg[0, :] = 1
    bg[3, :2] = 1
    bg[3, 4] = 255                                                      # padded pixel
    fg[3, 4] = 255
    return dict(img=img, src_img=src, src_fg_mask=fg, src_bg_mask=bg, img_shape=(H, W))


def _expected(results, key):
    mask = results[key]
    out = np.empty_like(results['img'])
    for y in range(H):
        for x in range(W):
            out[y, x] = results['src_img'][y, x] if mask[y, x] == 1 else results['img'][y, x]
    return out


def test_build_and_hard_paste_pixels_exact():
    t = TRANSFORMS.build(dict(type='CopyPaste'))
    assert isinstance(t, CopyPaste)
    results = _results()
    fg_before, bg_before = results['src_fg_mask'].copy(), results['src_bg_mask'].copy()
    img_before = results['img'].copy()
    out = t(results)
    assert out['pasted_fg_img'].dtype == np.uint8 and out['pasted_fg_img'].shape == (H, W, 3)
    assert np.array_equal(out['pasted_fg_img'], _expected(results, 'src_fg_mask'))
    assert np.array_equal(out['pasted_bg_img'], _expected(results, 'src_bg_mask'))
    # spot checks by hand: (1, 1) is foreground -> source pixel (1*5 + 1)*3 + 50 = 68..70
    assert out['pasted_fg_img'][1, 1].tolist() == [68, 69, 70]
    assert out['pasted_fg_img'][0, 0].tolist() == [1, 2, 3]
    assert out['pasted_bg_img'][0, 0].tolist() == [50, 51, 52]
    # 255 (padding) is never pasted
    assert out['pasted_fg_img'][3, 4].tolist() == [1, 2, 3]
    assert out['pasted_bg_img'][3, 4].tolist() == [1, 2, 3]
    # the masks (used by the losses) and the target image are untouched
    assert np.array_equal(out['src_fg_mask'], fg_before) and np.array_equal(out['src_bg_mask'], bg_before)
    assert np.array_equal(out['img'], img_before)


def test_default_uses_no_randomness():
    state = np.random.get_state()
    CopyPaste()(_results())
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]  # Mersenne key and position


def test_bool_masks_and_float_images():
    results = _results()
    results['src_fg_mask'] = results['src_fg_mask'] == 1
    results['src_bg_mask'] = results['src_bg_mask'] == 1
    results['img'] = results['img'].astype(np.float32)
    results['src_img'] = results['src_img'].astype(np.float32)
    out = CopyPaste()(results)
    assert out['pasted_fg_img'].dtype == np.float32
    assert out['pasted_fg_img'][1, 1].tolist() == [68.0, 69.0, 70.0]
    assert out['pasted_fg_img'][3, 4].tolist() == [1.0, 2.0, 3.0]


def test_soft_edges_blend_only_near_the_edge():
    h, w = 24, 24
    img = np.zeros((h, w, 3), dtype=np.uint8)
    src = np.full((h, w, 3), 200, dtype=np.uint8)
    fg = np.zeros((h, w), dtype=np.uint8)
    fg[:, :12] = 1
    results = dict(img=img, src_img=src, src_fg_mask=fg, src_bg_mask=1 - fg)
    out = CopyPaste(soft_edge_sigma=1.5, random_blend_prob=1.0)(results)
    soft = out['pasted_fg_img'][..., 0].astype(int)
    assert (soft[:, :4] == 200).all() and (soft[:, -4:] == 0).all()       # far from the edge: exact
    assert ((soft[:, 11] > 100) & (soft[:, 11] < 200)).all()              # feathered inside the edge
    assert ((soft[:, 12] > 0) & (soft[:, 12] < 100)).all()                # feathered outside the edge
    # complementary masks: the two soft views add up to the source value (up to rounding)
    total = soft + out['pasted_bg_img'][..., 0].astype(int)
    assert (np.abs(total - 200) <= 1).all()
    assert np.array_equal(out['src_fg_mask'], fg)  # loss masks stay hard


def _edge_results():
    """A 24 x 24 paste whose foreground region is the left half (edge between columns 11 and 12)."""
    fg = np.zeros((24, 24), dtype=np.uint8)
    fg[:, :12] = 1
    return dict(img=np.zeros((24, 24, 3), np.uint8), src_img=np.full((24, 24, 3), 200, np.uint8),
                src_fg_mask=fg, src_bg_mask=1 - fg)


def test_soft_edge_sigma_alone_gives_soft_edges():
    # the documented ablation "paste_pipeline.0.soft_edge_sigma=3.0" sets only the sigma
    t = TRANSFORMS.build(dict(type='CopyPaste', soft_edge_sigma=3.0))
    assert t.random_blend_prob == 1.0
    hard = CopyPaste()(_edge_results())
    state = np.random.get_state()
    soft = t(_edge_results())
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]  # always soft: no random draw
    hard_fg, soft_fg = hard['pasted_fg_img'][..., 0], soft['pasted_fg_img'][..., 0]
    # the hard paste: 200 left of the edge, 0 right of it
    assert (hard_fg[:, :12] == 200).all() and (hard_fg[:, 12:] == 0).all()
    # at the edge the soft paste differs: about half of the source on both sides (blurred edge ~ 0.5)
    assert ((soft_fg[:, 11] > 100) & (soft_fg[:, 11] < 200)).all()
    assert ((soft_fg[:, 12] > 0) & (soft_fg[:, 12] < 100)).all()
    assert not np.array_equal(soft['pasted_bg_img'], hard['pasted_bg_img'])
    # far from the edge (> 3 sigma) the two pastes agree
    assert np.array_equal(soft_fg[:, :2], hard_fg[:, :2]) and np.array_equal(soft_fg[:, -2:], hard_fg[:, -2:])


def test_random_blend_prob_resolution():
    assert resolve_blend_prob(0.0, None) == 0.0        # default: hard paste
    assert resolve_blend_prob(3.0, None) == 1.0        # sigma alone: soft edges on every sample
    assert resolve_blend_prob(3.0, 0.25) == 0.25       # mix of hard and soft pastes
    assert resolve_blend_prob(3.0, 0.0) == 0.0         # sigma given but blending switched off explicitly
    assert resolve_blend_prob(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match=r'CopyPaste: .*soft_edge_sigma=0'):
        resolve_blend_prob(0.0, 0.5)
    with pytest.raises(ValueError, match=r'CopyPaste: .*\[0, 1\]'):
        resolve_blend_prob(3.0, -0.1)
    # an explicit 0 with a sigma: every sample is a hard paste, with no random draw
    t = CopyPaste(soft_edge_sigma=3.0, random_blend_prob=0.0)
    state = np.random.get_state()
    out = t(_edge_results())
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]
    assert np.array_equal(out['pasted_fg_img'], CopyPaste()(_edge_results())['pasted_fg_img'])


def test_random_blend_probability_draws_both_outcomes():
    np.random.seed(0)
    t = CopyPaste(soft_edge_sigma=2.0, random_blend_prob=0.5)
    fg = np.zeros((8, 8), dtype=np.uint8)
    fg[:, :4] = 1
    hard = np.repeat(np.where(fg[..., None] == 1, 200, 0), 3, axis=2).astype(np.uint8)
    soft_count = 0
    for _ in range(40):
        out = t(dict(img=np.zeros((8, 8, 3), np.uint8), src_img=np.full((8, 8, 3), 200, np.uint8),
                     src_fg_mask=fg, src_bg_mask=1 - fg))
        soft_count += not np.array_equal(out['pasted_fg_img'], hard)
    assert 5 < soft_count < 35


def test_shape_errors_name_the_keys():
    results = _results()
    results['src_img'] = results['src_img'][:3]
    with pytest.raises(ValueError, match=r"'img'.*\(4, 5, 3\).*'src_img'.*\(3, 5, 3\)"):
        CopyPaste()(results)
    results = _results()
    results['src_bg_mask'] = results['src_bg_mask'][:, :4]
    with pytest.raises(ValueError, match=r"'src_bg_mask'.*\(4, 4\)"):
        CopyPaste()(results)
    results = _results()
    results['src_img'] = results['src_img'].astype(np.float32)
    with pytest.raises(ValueError, match='dtype'):
        CopyPaste()(results)


def test_bad_mask_values_and_missing_keys():
    results = _results()
    results['src_fg_mask'][0, 0] = 2
    with pytest.raises(ValueError, match=r"'src_fg_mask'.*\[2\]"):
        CopyPaste()(results)
    results = _results()
    del results['src_bg_mask']
    with pytest.raises(KeyError, match='src_bg_mask'):
        CopyPaste()(results)


def test_errors_name_the_item_images():
    results = dict(_results(), img_path='data/JPEGImages/t.jpg', src_img_id='s_0001')
    results['src_fg_mask'][0, 0] = 2
    with pytest.raises(ValueError, match=r"^CopyPaste: results\['src_fg_mask'\].*\(target data/JPEGImages/t.jpg, "
                                         r"source s_0001\)$"):
        CopyPaste()(results)


def test_bad_arguments():
    with pytest.raises(ValueError, match='soft_edge_sigma'):
        CopyPaste(random_blend_prob=0.5)
    with pytest.raises(ValueError, match='random_blend_prob'):
        CopyPaste(soft_edge_sigma=1.0, random_blend_prob=1.5)
    with pytest.raises(ValueError, match='soft_edge_sigma'):
        CopyPaste(soft_edge_sigma=-1.0)
    assert 'soft_edge_sigma=2.0' in repr(CopyPaste(soft_edge_sigma=2.0, random_blend_prob=0.1))
    assert 'random_blend_prob=1.0' in repr(CopyPaste(soft_edge_sigma=2.0))
    assert 'random_blend_prob=0.0' in repr(CopyPaste())
