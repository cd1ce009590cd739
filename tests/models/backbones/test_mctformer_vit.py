"""Tests of csd_mm/models/backbones/mctformer_vit.py (MCTformer's multi-class-token ViT)."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.utils import resize_pos_embed

from csd_mm.models.backbones import MCTformerViT
from mmseg.registry import MODELS

TINY = dict(embed_dims=32, num_layers=3, num_heads=2)


def _tiny(num_classes=4, patch_size=16, img_size=32, **kwargs):
    torch.manual_seed(0)
    model = MCTformerViT(arch=TINY, num_classes=num_classes, img_size=img_size, patch_size=patch_size,
                         drop_path_rate=0.0, **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('patch_size,hw,grid', [(16, (32, 48), (2, 3)), (8, (32, 40), (4, 5))])
def test_output_shapes(patch_size, hw, grid):
    model = _tiny(num_classes=4, patch_size=patch_size)
    cls_tokens, patch_tokens, attn = model(torch.randn(2, 3, *hw))
    assert cls_tokens.shape == (2, 4, 32)
    assert patch_tokens.shape == (2, 32, *grid)
    assert isinstance(attn, list) and len(attn) == 3
    tokens = 4 + grid[0] * grid[1]
    for a in attn:
        assert a.shape == (2, 2, tokens, tokens)


def test_attention_rows_are_distributions_in_train_and_eval():
    model = _tiny()
    x = torch.randn(2, 3, 32, 32)
    for train in (False, True):
        model.train(train)
        _, _, attn = model(x)
        for a in attn:
            assert (a >= 0).all()
            assert torch.allclose(a.sum(dim=-1), torch.ones(a.shape[:-1]), atol=1e-5)


def test_first_block_attention_is_explicit_softmax_of_qk():
    """The returned weights of block 0 are softmax(Q K^T / sqrt(d)) of its own input, head by head."""
    model = _tiny(num_classes=3)
    x = torch.randn(1, 3, 32, 32)
    _, _, attn = model(x)
    tokens, hw = model.patch_embed(x)
    tokens = torch.cat([model.cls_token, tokens], dim=1) + model.pos_embed
    layer = model.layers[0]
    q, k, _ = layer.attn.qkv(layer.ln1(tokens)).reshape(1, -1, 3, 2, 16).permute(2, 0, 3, 1, 4)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1)  # head dim 16 -> sqrt = 4
    assert torch.allclose(attn[0], expected, atol=1e-6)


def test_fused_path_gives_same_tokens_without_weights():
    model = _tiny()
    x = torch.randn(2, 3, 48, 32)
    c1, p1, a1 = model(x, need_weights=True)
    c2, p2, a2 = model(x, need_weights=False)
    assert a2 == [] and len(a1) == 3
    assert torch.allclose(c1, c2, atol=1e-5) and torch.allclose(p1, p2, atol=1e-5)


def test_position_embedding_is_interpolated_for_other_input_sizes():
    """A model trained at 32 px run on 64 px equals a 64-px model holding the resized embedding."""
    small = _tiny(num_classes=2, img_size=32)  # 2x2 grid
    big = MCTformerViT(arch=TINY, num_classes=2, img_size=64, patch_size=16, drop_path_rate=0.0).eval()
    state = dict(small.state_dict())
    state['pos_embed'] = resize_pos_embed(small.pos_embed.detach(), (2, 2), (4, 4), mode='bicubic',
                                          num_extra_tokens=2)
    big.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    out_small, out_big = small(x), big(x)
    assert out_small[1].shape == (1, 32, 4, 4)
    for a, b in zip(out_small[:2], out_big[:2]):
        assert torch.allclose(a, b, atol=1e-5)
    # and it is not a no-op: a different embedding changes the output
    state['pos_embed'] = torch.zeros_like(state['pos_embed'])
    big.load_state_dict(state)
    assert not torch.allclose(out_small[1], big(x)[1], atol=1e-3)


def test_input_not_multiple_of_patch_is_padded():
    model = _tiny(patch_size=16)
    x = torch.randn(1, 3, 40, 50)
    _, patch_tokens, attn = model(x)
    assert patch_tokens.shape[-2:] == (3, 4)  # ceil(40/16), ceil(50/16)
    padded = F.pad(x, (0, 64 - 50, 0, 48 - 40))  # bottom/right zero padding ('corner')
    assert torch.allclose(model(padded)[1], patch_tokens, atol=1e-5)


def test_gradients_reach_tokens_and_embeddings():
    model = _tiny()
    model.train()
    cls_tokens, patch_tokens, _ = model(torch.randn(2, 3, 32, 32))
    (cls_tokens.sum() + patch_tokens.pow(2).sum()).backward()
    for name in ('cls_token', 'pos_embed', 'patch_embed.projection.weight', 'layers.0.attn.qkv.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_class_tokens_are_distinct_after_init():
    model = _tiny(num_classes=3)
    assert model.cls_token.shape == (1, 3, 32)
    assert not torch.allclose(model.cls_token[0, 0], model.cls_token[0, 1])


def test_registered_deit_small_and_arch_errors():
    model = MODELS.build(dict(type='MCTformerViT', arch='deit-small', num_classes=20))
    assert (model.embed_dims, model.num_layers, model.num_heads) == (384, 12, 6)
    assert model.pos_embed.shape == (1, 20 + 196, 384)
    assert model.cls_token.shape == (1, 20, 384)
    assert model.layers[0].ffn.layers[0][0].out_features == 4 * 384
    with pytest.raises(ValueError, match='unknown arch'):
        MCTformerViT(arch='vit-giant')
    with pytest.raises(ValueError, match='lacks'):
        MCTformerViT(arch=dict(embed_dims=32, num_layers=2))
    with pytest.raises(ValueError, match='divisible'):
        MCTformerViT(arch=dict(embed_dims=30, num_layers=2, num_heads=4))


def test_without_final_norm_the_tokens_are_the_last_blocks():
    """final_norm=False (MCTformer-V2) returns the last block's tokens; True applies ln1 on top of them."""
    plain = _tiny(num_classes=3, final_norm=False)
    normed = _tiny(num_classes=3, final_norm=True)
    with torch.no_grad():  # a non-trivial final norm, so that applying it is visible
        plain.ln1.weight.uniform_(0.5, 2.0)
        plain.ln1.bias.uniform_(-1.0, 1.0)
    normed.load_state_dict(plain.state_dict())  # same parameters, ln1 included
    x = torch.randn(2, 3, 32, 48)
    cls_plain, patch_plain, attn_plain = plain(x)
    cls_normed, patch_normed, attn_normed = normed(x)
    for a, b in zip(attn_plain, attn_normed):
        assert torch.equal(a, b)  # the blocks are untouched
    # by hand: the tokens leaving the last block
    tokens, hw = plain.patch_embed(x)
    tokens = torch.cat([plain.cls_token.expand(2, -1, -1), tokens], dim=1)
    tokens = tokens + resize_pos_embed(plain.pos_embed, (2, 2), hw, mode='bicubic', num_extra_tokens=3)
    for layer in plain.layers:
        tokens, _ = layer(tokens)
    assert torch.allclose(cls_plain, tokens[:, :3], atol=1e-6)
    assert torch.allclose(patch_plain.flatten(2).transpose(1, 2), tokens[:, 3:], atol=1e-6)
    normed_tokens = plain.ln1(tokens)
    assert torch.allclose(cls_normed, normed_tokens[:, :3], atol=1e-5)
    assert torch.allclose(patch_normed.flatten(2).transpose(1, 2), normed_tokens[:, 3:], atol=1e-5)
    assert not torch.allclose(cls_plain, cls_normed, atol=1e-3)


def test_unused_final_norm_is_kept_but_frozen():
    model = _tiny(final_norm=False)
    model.train()
    assert set(model.state_dict()) >= {'ln1.weight', 'ln1.bias'}  # checkpoints keep one layout
    assert not model.ln1.weight.requires_grad and not model.ln1.bias.requires_grad
    cls_tokens, patch_tokens, _ = model(torch.randn(2, 3, 32, 32))
    (cls_tokens.sum() + patch_tokens.pow(2).sum()).backward()
    # every trainable parameter gets a gradient (no unused parameter for DDP)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
    assert _tiny(final_norm=True).ln1.weight.requires_grad
    with pytest.raises(TypeError, match='final_norm'):
        MCTformerViT(arch=TINY, final_norm='no')
