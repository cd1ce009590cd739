"""Loading DeiT / ViT checkpoints into :class:`~csd_mm.models.backbones.MCTformerViT`.

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

What mmengine does: ``CheckpointLoader.load_checkpoint`` reads the file, the timm names are mapped to
mmpretrain's by mmengine's ``revise_keys`` (:data:`DEIT_REVISE_KEYS`, ``(pattern, replacement)`` regexes applied
in order) and ``load_state_dict(strict=True)`` loads the weights (both in mmengine's
``_load_checkpoint_to_model``, the body of ``mmengine.runner.load_checkpoint``, which mmseg's inferencer calls
too); a misfit's error (missing / unexpected keys, size mismatches) is re-raised naming the file. What is
MCTformer's own is in :func:`adapt_class_tokens` (class tokens and position embedding), plus the unwrapping of
the DeiT release's ``{'model': ...}`` and of whole-classifier ``backbone.*`` checkpoints.

The file is read with ``torch.load``'s default ``weights_only=True`` (torch >= 2.6; the pinned torch is 2.14.1,
and :mod:`csd_mm.compat` allow-lists mmengine's few plain-data classes): a checkpoint file can never run code.
Only a local file is accepted (mmengine would otherwise download a URL).
"""
import os
import re
from typing import Dict, Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

__all__ = ['DEIT_REVISE_KEYS', 'adapt_class_tokens', 'load_deit_pretrained']

StateDict = Dict[str, Tensor]

#: mmengine ``revise_keys``: official DeiT / timm ViT names -> mmpretrain ``VisionTransformer`` names. The
#: patterns never match a renamed key, so applying them in order renames each key at most once; mmpretrain
#: names match none of them and are kept.
DEIT_REVISE_KEYS = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.qkv\.', r'layers.\1.attn.qkv.'),
    (r'^blocks\.(\d+)\.attn\.proj\.', r'layers.\1.attn.proj.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^norm\.', 'ln1.'),
]
# classifier heads of DeiT / timm (incl. the distillation head) and of mmpretrain, never used by MCTformer
_DROPPED = re.compile(r'^(head|head_dist)\.')


def _backbone_state_dict(checkpoint, source: str) -> StateDict:
    """The ViT tensors of a loaded checkpoint: wrappers ``state_dict`` (mmengine), ``model`` (DeiT releases)
    and ``module`` removed, a ``module.`` prefix (DDP) stripped, and of a whole mmpretrain classifier only the
    ``backbone.*`` keys (prefix stripped)."""
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise ValueError(f'checkpoint {source}: expected a (possibly wrapped) dict of tensors, got '
                         f'{type(checkpoint).__name__}')
    state = {k: v for k, v in checkpoint.items() if isinstance(v, Tensor)}
    if not state:
        raise ValueError(f'checkpoint {source} holds no tensors')
    if all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return state


def adapt_class_tokens(state: StateDict, num_classes: int, patch_resolution: Sequence[int],
                       interpolate_mode: str = 'bicubic', source: str = '<state dict>') -> StateDict:
    """Turns a single-class-token ViT state dict into an MCTformer one.

    * ``cls_token`` ``(1, 1, D)`` is repeated to ``(1, C, D)`` (one copy per class, as MCTformer does); a
      checkpoint that already has ``C`` class tokens is kept.
    * ``pos_embed`` ``(1, E + s*s, D)``: the class-token entries are repeated the same way, a distillation
      token entry (``dist_token`` present) is dropped, and the ``s x s`` patch part is resized to
      ``patch_resolution`` with mmpretrain's ``resize_pos_embed``.
    * ``dist_token`` is dropped.

    Only these three keys are touched (they have the same names in the timm and mmpretrain layouts).

    Args:
        state (dict): ViT state dict (not modified).
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


def load_deit_pretrained(model: nn.Module, path: str) -> str:
    """Loads a local DeiT / ViT checkpoint into an :class:`MCTformerViT` (strict, after adaptation).

    Args:
        model (MCTformerViT): The backbone (uses its ``num_classes``, ``patch_resolution`` and
            ``interpolate_mode``).
        path (str): Local checkpoint path, official DeiT/timm or mmpretrain layout.

    Returns:
        str: The detected layout, ``'timm'`` or ``'mmpretrain'``.

    Raises:
        FileNotFoundError: ``path`` is not a local file.
        ValueError: Not a ViT checkpoint, a misfit (missing / unexpected keys, size mismatches) or bad class
            tokens (:func:`adapt_class_tokens`); every message names ``path``.
        pickle.UnpicklingError: The file holds objects other than tensors and plain data.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'DeiT checkpoint {path!r} does not exist (pass a LOCAL file path; '
                                'checkpoints are not downloaded)')
    source = repr(path)
    state = _backbone_state_dict(CheckpointLoader.load_checkpoint(path, map_location='cpu'), source)
    if any(k.startswith('blocks.') for k in state):
        layout = 'timm'
    elif any(k.startswith('layers.') for k in state):
        layout = 'mmpretrain'
    else:
        raise ValueError(f'checkpoint {source}: not a ViT/DeiT state dict (no blocks.N.* or layers.N.* keys); '
                         f'first keys: {sorted(state)[:8]}')
    source = f'{path!r} ({layout} layout)'
    state = {k: v for k, v in state.items() if not _DROPPED.match(k)}
    state = adapt_class_tokens(state, model.num_classes, model.patch_resolution,
                               interpolate_mode=model.interpolate_mode, source=source)
    try:
        _load_checkpoint_to_model(model, state, strict=True, revise_keys=DEIT_REVISE_KEYS)
    except RuntimeError as err:  # mmengine's load_state_dict lists missing / unexpected keys, size mismatches
        raise ValueError(f'checkpoint {source} does not fit the MCTformer backbone (keys in mmpretrain '
                         f'VisionTransformer naming after conversion): {err}') from None
    MMLogger.get_current_instance().info(
        f'MCTformerViT: loaded {layout}-layout checkpoint {path} ({model.num_classes} class tokens, '
        f'patch grid {tuple(model.patch_resolution)})')
    return layout

