"""Tests of csd_mm/models/mctformer_cam.py on hand-built attention tensors (hand-computed results).

Layout: N = 1 image, 2 heads, C = 2 class tokens, P = 2 patches (a 1 x 2 grid), T = 4 tokens, 3 blocks.
Entries outside the class-to-patch and patch-to-patch blocks are set to 100 so that any slicing mistake
shows up in the numbers.
"""
import pytest
import torch

from csd_mm.models.mctformer_cam import (class_to_patch_attention, mctformer_cams, patch_maps_to_pixels,
                                         patch_to_patch_attention, refine_with_patch_attention)

# class-to-patch part (rows = class tokens, columns = patches), per block, per head
C2P = [
    ([[1., 2.], [3., 4.]], [[3., 2.], [1., 0.]]),  # block 0: head mean [[2, 2], [2, 2]]
    ([[2., 0.], [0., 2.]], [[0., 0.], [2., 2.]]),  # block 1: head mean [[1, 0], [1, 2]]
    ([[4., 4.], [0., 0.]], [[0., 2.], [2., 0.]]),  # block 2: head mean [[2, 3], [1, 0]]
]
# patch-to-patch part, per block, per head
P2P = [
    ([[1., 0.], [0., 1.]], [[1., 0.], [0., 1.]]),  # block 0: head mean [[1, 0], [0, 1]]
    ([[0., 2.], [0., 0.]], [[0., 0.], [2., 0.]]),  # block 1: head mean [[0, 1], [1, 0]]
    ([[2., 0.], [0., 0.]], [[0., 0.], [0., 0.]]),  # block 2: head mean [[1, 0], [0, 0]]
]


def _attn():
    maps = []
    for (c0, c1), (p0, p1) in zip(C2P, P2P):
        a = torch.full((1, 2, 4, 4), 100.)
        a[0, 0, :2, 2:], a[0, 1, :2, 2:] = torch.tensor(c0), torch.tensor(c1)
        a[0, 0, 2:, 2:], a[0, 1, 2:, 2:] = torch.tensor(p0), torch.tensor(p1)
        maps.append(a)
    return maps


def test_class_to_patch_attention_hand_numbers():
    attn = _attn()
    # last 2 blocks: [[1, 0], [1, 2]] + [[2, 3], [1, 0]]
    assert torch.equal(class_to_patch_attention(attn, 2, num_layers=2), torch.tensor([[[3., 3.], [2., 2.]]]))
    assert torch.equal(class_to_patch_attention(attn, 2, num_layers=3), torch.tensor([[[5., 5.], [4., 4.]]]))
    assert torch.equal(class_to_patch_attention(attn, 2, num_layers=1), torch.tensor([[[2., 3.], [1., 0.]]]))
    # a stacked (blocks, N, heads, T, T) tensor works as well
    assert torch.equal(class_to_patch_attention(torch.stack(attn), 2, 2), torch.tensor([[[3., 3.], [2., 2.]]]))


def test_patch_to_patch_attention_hand_numbers():
    # I + [[0, 1], [1, 0]] + [[1, 0], [0, 0]]
    assert torch.equal(patch_to_patch_attention(_attn(), 2), torch.tensor([[[2., 1.], [1., 1.]]]))


def test_refine_with_patch_attention_hand_numbers():
    cams = torch.tensor([[[[0., 6.]], [[6., 0.]]]])  # (1, C=2, 1, 2)
    affinity = torch.tensor([[[2., 1.], [1., 1.]]])
    # out[c, i] = sum_j A[i, j] cam[c, j]: c0 -> [6, 6], c1 -> [12, 6]
    assert torch.equal(refine_with_patch_attention(cams, affinity), torch.tensor([[[[6., 6.]], [[12., 6.]]]]))
    with pytest.raises(ValueError, match='refine_with_patch_attention: patch attention'):
        refine_with_patch_attention(cams, torch.zeros(1, 3, 3))


def test_mctformer_cams_hand_numbers():
    score_map = torch.tensor([[[[-1., 2.]], [[3., -4.]]]])  # ReLU -> [[0, 2], [3, 0]]
    # class-to-patch (last 2 blocks) [[3, 3], [2, 2]] x ReLU -> [[0, 6], [6, 0]]
    plain = mctformer_cams(_attn(), score_map, num_layers=2, patch_refine=False)
    assert torch.equal(plain, torch.tensor([[[[0., 6.]], [[6., 0.]]]]))
    refined = mctformer_cams(_attn(), score_map, num_layers=2, patch_refine=True)
    assert torch.equal(refined, torch.tensor([[[[6., 6.]], [[12., 6.]]]]))
    # last 3 blocks: [[5, 5], [4, 4]] x ReLU -> [[0, 10], [12, 0]]
    assert torch.equal(mctformer_cams(_attn(), score_map, num_layers=3, patch_refine=False),
                       torch.tensor([[[[0., 10.]], [[12., 0.]]]]))


def test_mctformer_cams_errors():
    score_map = torch.zeros(1, 2, 1, 2)
    with pytest.raises(ValueError, match='num_layers'):
        mctformer_cams(_attn(), score_map, num_layers=4)
    with pytest.raises(ValueError, match='do not match'):
        mctformer_cams(_attn(), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match='no attention maps'):
        mctformer_cams([], score_map)
    with pytest.raises(ValueError, match='one shape'):
        mctformer_cams([torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 5, 5)], score_map)


def test_patch_maps_to_pixels_hand_numbers():
    maps = torch.tensor([[[[0., 1.]]]])  # one row of 2 patches, patch size 2 -> 4 px, of which 3 are real
    out = patch_maps_to_pixels(maps, 2, (2, 3))
    # bilinear, align_corners=False, 2 -> 4: source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped), 0.25, 0.75
    assert torch.allclose(out, torch.tensor([[[[0., .25, .75], [0., .25, .75]]]]))
    assert patch_maps_to_pixels(maps, 2, (2, 4)).shape == (1, 1, 2, 4)
    with pytest.raises(ValueError, match='does not give'):
        patch_maps_to_pixels(maps, 2, (2, 5))
    with pytest.raises(ValueError, match='does not give'):
        patch_maps_to_pixels(maps, 2, (2, 2))  # 2 px would be a single patch
