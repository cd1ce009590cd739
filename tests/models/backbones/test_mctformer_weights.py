"""Tests of csd_mm/models/backbones/mctformer_weights.py (DeiT / mmpretrain checkpoints -> MCTformerViT).

The checkpoints are random and written by the tests: a hand-built state dict with the official DeiT/timm key
names, and the state dict of a tiny mmpretrain ``VisionTransformer``.
"""
import pickle
import re

import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from csd_mm.models.backbones import MCTformerViT
from csd_mm.models.backbones.mctformer_weights import DEIT_REVISE_KEYS, adapt_class_tokens, load_deit_pretrained

D, DEPTH, HEADS, PATCH = 32, 3, 2, 16
TINY = dict(embed_dims=D, num_layers=DEPTH, num_heads=HEADS)


def _timm_deit_state(grid=4, depth=DEPTH, dim=D, distilled=False, seed=0):
    """A random state dict with the key names and shapes of an official DeiT checkpoint."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    extra = 2 if distilled else 1
    state = {'cls_token': r(1, 1, dim), 'pos_embed': r(1, extra + grid * grid, dim),
             'patch_embed.proj.weight': r(dim, 3, PATCH, PATCH), 'patch_embed.proj.bias': r(dim),
             'norm.weight': r(dim), 'norm.bias': r(dim), 'head.weight': r(1000, dim), 'head.bias': r(1000)}
    if distilled:
        state.update({'dist_token': r(1, 1, dim), 'head_dist.weight': r(1000, dim), 'head_dist.bias': r(1000)})
    for i in range(depth):
        b = f'blocks.{i}.'
        state.update({
            b + 'norm1.weight': r(dim), b + 'norm1.bias': r(dim),
            b + 'attn.qkv.weight': r(3 * dim, dim), b + 'attn.qkv.bias': r(3 * dim),
            b + 'attn.proj.weight': r(dim, dim), b + 'attn.proj.bias': r(dim),
            b + 'norm2.weight': r(dim), b + 'norm2.bias': r(dim),
            b + 'mlp.fc1.weight': r(4 * dim, dim), b + 'mlp.fc1.bias': r(4 * dim),
            b + 'mlp.fc2.weight': r(dim, 4 * dim), b + 'mlp.fc2.bias': r(dim),
        })
    return state


def _model(num_classes=3, img_size=32, pretrained=None):
    torch.manual_seed(1)
    return MCTformerViT(arch=TINY, num_classes=num_classes, img_size=img_size, patch_size=PATCH,
                        drop_path_rate=0.0, pretrained=pretrained)


def test_timm_layout_loads_with_repeated_class_tokens_and_interpolated_pos_embed(tmp_path):
    state = _timm_deit_state(grid=4)  # a 64-px DeiT (4x4 patches)
    path = tmp_path / 'deit_tiny_random.pth'
    torch.save({'model': state, 'epoch': 3}, path)  # the official DeiT release wraps the weights in 'model'
    model = _model(num_classes=3, img_size=32, pretrained=str(path))  # 2x2 patch grid
    model.init_weights()

    for c in range(3):  # one copy of the class token (and of its position embedding) per class
        assert torch.equal(model.cls_token[0, c], state['cls_token'][0, 0])
        assert torch.equal(model.pos_embed[0, c], state['pos_embed'][0, 0])
    expected_patch = resize_pos_embed(state['pos_embed'], (4, 4), (2, 2), mode='bicubic', num_extra_tokens=1)
    assert model.pos_embed.shape == (1, 3 + 4, D)
    assert torch.allclose(model.pos_embed[:, 3:], expected_patch[:, 1:])
    assert torch.equal(model.patch_embed.projection.weight, state['patch_embed.proj.weight'])
    assert torch.equal(model.layers[1].ln1.weight, state['blocks.1.norm1.weight'])
    assert torch.equal(model.layers[2].attn.qkv.bias, state['blocks.2.attn.qkv.bias'])
    assert torch.equal(model.layers[0].attn.proj.weight, state['blocks.0.attn.proj.weight'])
    assert torch.equal(model.layers[1].ln2.bias, state['blocks.1.norm2.bias'])
    assert torch.equal(model.layers[2].ffn.layers[0][0].weight, state['blocks.2.mlp.fc1.weight'])
    assert torch.equal(model.layers[0].ffn.layers[1].bias, state['blocks.0.mlp.fc2.bias'])
    assert torch.equal(model.ln1.weight, state['norm.weight'])


def _revise(state):
    """mmengine's revise_keys (as in ``_load_checkpoint_to_model``) with the DeiT -> mmpretrain rules."""
    for pattern, repl in DEIT_REVISE_KEYS:
        state = {re.sub(pattern, repl, k): v for k, v in state.items()}
    return state


def test_timm_key_revision_and_layout_detection(tmp_path):
    state = _timm_deit_state(distilled=True)
    converted = _revise({k: v for k, v in state.items() if not k.startswith(('head.', 'head_dist.'))})
    assert len(converted) == len(state) - 4  # one name per key, heads dropped before
    assert not any(k.startswith(('blocks.', 'norm.')) for k in converted)
    assert 'layers.0.ffn.layers.0.0.weight' in converted and 'ln1.bias' in converted
    assert 'patch_embed.projection.weight' in converted and 'dist_token' in converted
    assert _revise(converted) == converted  # mmpretrain names are kept
    path = tmp_path / 'resnet.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match='resnet.pth.*not a ViT'):
        load_deit_pretrained(_model(), str(path))


def test_distilled_deit_drops_the_distillation_token(tmp_path):
    state = _timm_deit_state(grid=2, distilled=True)
    path = tmp_path / 'deit_distilled.pth'
    torch.save({'model': state}, path)
    model = _model(num_classes=2, img_size=32)
    load_deit_pretrained(model, str(path))
    assert torch.equal(model.pos_embed[0, 0], state['pos_embed'][0, 0])
    assert torch.equal(model.pos_embed[0, 1], state['pos_embed'][0, 0])
    assert torch.equal(model.pos_embed[0, 2:], state['pos_embed'][0, 2:])  # same 2x2 grid, dist entry gone


def test_mmpretrain_layout_matches_mmpretrain_vit_outputs(tmp_path):
    """With one class token, the loaded model computes exactly what mmpretrain's ViT computes."""
    torch.manual_seed(2)
    vit = VisionTransformer(arch=dict(TINY, feedforward_channels=4 * D), img_size=48, patch_size=PATCH,
                            out_type='raw')
    vit.init_weights()
    vit.eval()  # (mmpretrain's BaseBackbone.train returns None, so no chaining)
    path = tmp_path / 'vit_mmpretrain.pth'
    # whole-classifier checkpoint as mmengine writes it: 'state_dict' with 'backbone.' / 'head.' prefixes
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state['head.layers.head.weight'] = torch.randn(1000, D)
    torch.save({'meta': {'epoch': 1}, 'state_dict': state}, path)

    model = _model(num_classes=1, img_size=48)
    assert load_deit_pretrained(model, str(path)) == 'mmpretrain'
    model.eval()
    x = torch.randn(2, 3, 48, 48)
    raw = vit(x)[0]  # (N, 1 + 9, D) after the final norm
    cls_tokens, patch_tokens, _ = model(x)
    assert torch.allclose(cls_tokens[:, 0], raw[:, 0], atol=1e-5)
    assert torch.allclose(patch_tokens.flatten(2).transpose(1, 2), raw[:, 1:], atol=1e-5)

    many = _model(num_classes=4, img_size=32)  # repeated tokens and a resized (3x3 -> 2x2) grid
    load_deit_pretrained(many, str(path))
    assert torch.equal(many.cls_token, vit.cls_token.repeat(1, 4, 1))
    expected = resize_pos_embed(vit.pos_embed, (3, 3), (2, 2), mode='bicubic', num_extra_tokens=1)
    assert torch.allclose(many.pos_embed[:, 4:], expected[:, 1:])


def test_checkpoint_with_c_class_tokens_is_kept(tmp_path):
    source = _model(num_classes=3, img_size=32)
    source.init_weights()
    path = tmp_path / 'mctformer.pth'
    torch.save(source.state_dict(), path)
    target = _model(num_classes=3, img_size=32)
    load_deit_pretrained(target, str(path))
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k


@pytest.mark.parametrize('kind,match', [
    ('embed', 'size mismatch for layers'),
    ('shallow', r'missing keys in source state_dict: .*layers\.2\.'),
    ('deep', r'unexpected key in source state_dict: .*layers\.3\.'),
])
def test_misfit_checkpoint_names_the_file_and_keys(tmp_path, kind, match):
    if kind == 'embed':
        state = _timm_deit_state(dim=48)
    else:
        state = _timm_deit_state(depth=2 if kind == 'shallow' else 4)
    path = tmp_path / f'misfit_{kind}.pth'
    torch.save({'model': state}, path)
    model = _model(pretrained=str(path))
    with pytest.raises(ValueError, match=match) as info:
        model.init_weights()
    assert 'misfit_' + kind in str(info.value)


def test_bad_class_tokens_and_pos_grid():
    state = _timm_deit_state(grid=2)
    bad = dict(state, cls_token=torch.zeros(1, 2, D))
    with pytest.raises(ValueError, match='ckpt.pth.*cls_token'):
        adapt_class_tokens(bad, 3, (2, 2), source='ckpt.pth')
    bad = dict(state, pos_embed=torch.zeros(1, 1 + 6, D))
    with pytest.raises(ValueError, match='not a square grid'):
        adapt_class_tokens(bad, 3, (2, 2), source='ckpt.pth')
    with pytest.raises(ValueError, match='pos_embed.*missing'):
        adapt_class_tokens({'cls_token': state['cls_token']}, 3, (2, 2), source='ckpt.pth')


class _Payload:
    """An arbitrary class: a weights_only load must refuse to unpickle it."""


def test_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'model': _timm_deit_state(), 'payload': _Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_deit_pretrained(_model(), str(path))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth.*LOCAL'):
        load_deit_pretrained(_model(), str(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='not downloaded'):  # mmengine would download a URL
        load_deit_pretrained(_model(), 'https://example.com/deit.pth')


def test_deit_checkpoint_with_norm_loads_into_a_backbone_without_final_norm(tmp_path):
    """MCTformer-V2 does not apply the final norm; DeiT's norm.* still loads (into the frozen ln1)."""
    state = _timm_deit_state(grid=2)
    path = tmp_path / 'deit.pth'
    torch.save({'model': state}, path)
    torch.manual_seed(1)
    model = MCTformerViT(arch=TINY, num_classes=3, img_size=32, patch_size=PATCH, drop_path_rate=0.0,
                         final_norm=False, pretrained=str(path))
    model.init_weights()
    assert torch.equal(model.ln1.weight, state['norm.weight'])
    assert torch.equal(model.ln1.bias, state['norm.bias'])
    assert not model.ln1.weight.requires_grad  # loading keeps it frozen
    # and a checkpoint of such a backbone loads into one with the final norm (and back)
    ckpt = tmp_path / 'mct.pth'
    torch.save(model.state_dict(), ckpt)
    with_norm = _model(num_classes=3, img_size=32)
    load_deit_pretrained(with_norm, str(ckpt))
    assert torch.equal(with_norm.ln1.bias, state['norm.bias'])
