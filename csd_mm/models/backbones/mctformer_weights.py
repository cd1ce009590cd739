"""Loading DeiT / ViT checkpoints into :class:`~csd_mm.models.backbones.MCTformerViT` (pure functions).

MCTformer (Xu et al., "Multi-class Token Transformer for Weakly Supervised Semantic Segmentation",
CVPR 2022) starts from ImageNet DeiT weights: the single class token and its position embedding are
repeated once per class, the patch position embedding is interpolated to the model's patch grid and the
classifier head is dropped. The CSD paper (Yang et al., BMVC 2023) starts its MCTformer-V2 baseline the same
way (docs/method.md section 9).

Two layouts are understood (detected from the keys):

* official DeiT / timm: ``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.norm1/2.*``,
  ``blocks.N.attn.qkv/proj.*``, ``blocks.N.mlp.fc1/fc2.*``, ``norm.*``, ``head.*`` (and ``dist_token`` /
  ``head_dist.*`` for distilled DeiT, dropped);
* mmpretrain ``VisionTransformer``: ``patch_embed.projection.*``, ``layers.N.ln1/ln2.*``,
  ``layers.N.attn.qkv/proj.*``, ``layers.N.ffn.layers.0.0.*`` / ``ffn.layers.1.*``, final norm ``ln1.*``
  (bare, or under ``backbone.`` in a whole-classifier checkpoint whose ``head.*`` is dropped).

The checkpoint is read with ``torch.load(weights_only=True)``: a file can never run code. Wrappers
``{'model': ...}`` (DeiT releases), ``{'state_dict': ...}`` (mmengine) and ``module.`` prefixes (DDP) are
unwrapped.
"""
import os
import re
from typing import Dict, List, Sequence, Tuple

import torch
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

__all__ = ['read_checkpoint_state_dict', 'detect_vit_layout', 'convert_timm_deit_keys',
           'adapt_class_tokens', 'check_state_dict_fits', 'load_deit_pretrained']

StateDict = Dict[str, Tensor]

# (pattern, replacement) applied in order to each timm key; the first that matches wins.
_TIMM_TO_MMPRETRAIN: List[Tuple[str, str]] = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.qkv\.', r'layers.\1.attn.qkv.'),
    (r'^blocks\.(\d+)\.attn\.proj\.', r'layers.\1.attn.proj.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^norm\.', 'ln1.'),
]
# classifier heads of DeiT / timm (incl. the distillation head), never used by MCTformer
_TIMM_DROPPED = re.compile(r'^(head|head_dist)\.')


def read_checkpoint_state_dict(path: str) -> StateDict:
    """Reads the tensors of a local checkpoint without unpickling arbitrary objects.

    Args:
        path (str): Local checkpoint file (``.pth``).

    Returns:
        dict: Parameter name -> tensor, with ``model`` / ``state_dict`` wrappers, a ``module.`` prefix and
        (for whole mmpretrain classifiers) the ``backbone.`` prefix removed; in the last case keys outside
        the backbone (``head.*``, ``data_preprocessor.*``) are dropped.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file holds no dict of tensors.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'DeiT checkpoint {path!r} does not exist (pass a LOCAL file path; '
                                'checkpoints are not downloaded)')
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(wrapper), dict):
            ckpt = ckpt[wrapper]
            break
    if not isinstance(ckpt, dict) or not ckpt:
        raise ValueError(f'checkpoint {path!r}: expected a (possibly wrapped) dict of tensors, got '
                         f'{type(ckpt).__name__}')
    state = {k: v for k, v in ckpt.items() if isinstance(v, Tensor)}
    if not state:
        raise ValueError(f'checkpoint {path!r} holds no tensors')
    if all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return state


def detect_vit_layout(state: StateDict) -> str:
    """Tells the key layout of a ViT state dict.

    Returns:
        str: ``'timm'`` (official DeiT: ``blocks.N...``) or ``'mmpretrain'`` (``layers.N...``).

    Raises:
        ValueError: Neither layout (the message lists a few keys).
    """
    if any(k.startswith('blocks.') for k in state):
        return 'timm'
    if any(k.startswith('layers.') for k in state):
        return 'mmpretrain'
    raise ValueError('not a ViT/DeiT state dict (no blocks.N.* or layers.N.* keys); first keys: '
                     f'{sorted(state)[:8]}')


def convert_timm_deit_keys(state: StateDict) -> StateDict:
    """Renames official DeiT / timm ViT keys to mmpretrain's ``VisionTransformer`` names.

    The classifier heads (``head.*``, ``head_dist.*``) are dropped; ``cls_token``, ``pos_embed`` and
    ``dist_token`` keep their names; keys that match no rule are kept unchanged (so a misfit shows up as
    an unexpected key later).

    Args:
        state (dict): timm-layout state dict.

    Returns:
        dict: mmpretrain-layout state dict (tensors shared, not copied).
    """
    out: StateDict = {}
    for key, value in state.items():
        if _TIMM_DROPPED.match(key):
            continue
        new_key = key
        for pattern, repl in _TIMM_TO_MMPRETRAIN:
            new_key, n = re.subn(pattern, repl, key)
            if n:
                break
        out[new_key] = value
    return out


def adapt_class_tokens(state: StateDict, num_classes: int, patch_resolution: Sequence[int],
                       interpolate_mode: str = 'bicubic', source: str = '<state dict>') -> StateDict:
    """Turns a single-class-token ViT state dict (mmpretrain names) into an MCTformer one.

    * ``cls_token`` ``(1, 1, D)`` is repeated to ``(1, C, D)`` (one copy per class, as MCTformer does); a
      checkpoint that already has ``C`` class tokens is kept.
    * ``pos_embed`` ``(1, E + s*s, D)``: the class-token entries are repeated the same way, a distillation
      token entry (``dist_token`` present) is dropped, and the ``s x s`` patch part is resized to
      ``patch_resolution`` with mmpretrain's ``resize_pos_embed``.
    * ``dist_token`` is dropped.

    Args:
        state (dict): mmpretrain-layout state dict (not modified).
        num_classes (int): Number of class tokens C of the model.
        patch_resolution (Sequence[int]): The model's patch grid ``(h, w)``.
        interpolate_mode (str): Interpolation mode for the patch position embedding.
        source (str): Name of the checkpoint for error messages.

    Returns:
        dict: A new state dict.

    Raises:
        ValueError: Missing ``cls_token`` / ``pos_embed``, a class-token count other than 1 or C, or a
            patch position embedding that is not a square grid.
    """
    for key in ('cls_token', 'pos_embed'):
        if key not in state:
            raise ValueError(f'checkpoint {source}: key {key!r} is missing')
    out = dict(state)
    cls_token = state['cls_token']
    n_cls = cls_token.shape[1] if cls_token.ndim == 3 else -1
    if n_cls not in (1, num_classes):
        raise ValueError(f'checkpoint {source}: cls_token has shape {tuple(cls_token.shape)}; expected '
                         f'(1, 1, D) or (1, {num_classes}, D)')
    has_dist = 'dist_token' in out
    out.pop('dist_token', None)
    n_extra = n_cls + int(has_dist)

    pos_embed = state['pos_embed']
    if pos_embed.ndim != 3 or pos_embed.shape[1] <= n_extra:
        raise ValueError(f'checkpoint {source}: pos_embed has shape {tuple(pos_embed.shape)}; expected '
                         f'(1, {n_extra} + H*W, D)')
    num_patches = pos_embed.shape[1] - n_extra
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise ValueError(f'checkpoint {source}: pos_embed has {num_patches} patch entries (shape '
                         f'{tuple(pos_embed.shape)} with {n_extra} extra tokens), not a square grid')
    resized = resize_pos_embed(pos_embed, (side, side), tuple(patch_resolution), mode=interpolate_mode,
                               num_extra_tokens=n_extra)
    cls_pos = pos_embed[:, :n_cls]
    if n_cls == 1:
        cls_pos = cls_pos.repeat(1, num_classes, 1)
        out['cls_token'] = cls_token.repeat(1, num_classes, 1)
    out['pos_embed'] = torch.cat((cls_pos, resized[:, n_extra:]), dim=1)
    return out


def check_state_dict_fits(state: StateDict, expected: Dict[str, torch.Size], source: str) -> None:
    """Raises a ValueError that names every missing key, unexpected key and shape mismatch.

    Args:
        state (dict): The converted checkpoint state dict.
        expected (dict): Parameter name -> shape of the model.
        source (str): Name of the checkpoint for the message.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k])}'
             for k in sorted(set(state) & set(expected)) if tuple(state[k].shape) != tuple(expected[k])]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f'missing keys ({len(missing)}): {missing[:10]}' + (' ...' if len(missing) > 10 else ''))
    if unexpected:
        parts.append(f'unexpected keys ({len(unexpected)}): {unexpected[:10]}' +
                     (' ...' if len(unexpected) > 10 else ''))
    if wrong:
        parts.append(f'shape mismatches ({len(wrong)}): {wrong[:10]}' + (' ...' if len(wrong) > 10 else ''))
    raise ValueError(f'checkpoint {source} does not fit the MCTformer backbone (keys in mmpretrain '
                     'VisionTransformer naming after conversion): ' + '; '.join(parts))


def load_deit_pretrained(model: nn.Module, path: str) -> Tuple[str, StateDict]:
    """Loads a local DeiT / ViT checkpoint into an :class:`MCTformerViT` (strict, after adaptation).

    Args:
        model (MCTformerViT): The backbone (uses its ``num_classes``, ``patch_resolution`` and
            ``interpolate_mode``).
        path (str): Local checkpoint path, official DeiT/timm or mmpretrain layout.

    Returns:
        tuple: The detected layout (``'timm'`` or ``'mmpretrain'``) and the loaded state dict.

    Raises:
        FileNotFoundError, ValueError: See :func:`read_checkpoint_state_dict`, :func:`adapt_class_tokens`
            and :func:`check_state_dict_fits`; every message names ``path``.
    """
    source = repr(path)
    state = read_checkpoint_state_dict(path)
    try:
        layout = detect_vit_layout(state)
    except ValueError as err:
        raise ValueError(f'checkpoint {source}: {err}') from None
    source = f'{path!r} ({layout} layout)'
    if layout == 'timm':
        state = convert_timm_deit_keys(state)
    else:
        state = {k: v for k, v in state.items() if not k.startswith('head.')}
    state = adapt_class_tokens(state, model.num_classes, model.patch_resolution,
                               interpolate_mode=model.interpolate_mode, source=source)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state_dict_fits(state, expected, source)
    model.load_state_dict(state, strict=True)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().info(
        f'MCTformerViT: loaded {layout}-layout checkpoint {path} ({model.num_classes} class tokens, '
        f'patch grid {tuple(model.patch_resolution)})')
    return layout, state
