"""Checks that a checkpoint file is a checkpoint of the model it is about to be loaded into.

MMEngine's ``Runner`` loads ``load_from`` non-strictly: a DeepLab checkpoint, or any ``.pth``, given to a CAM
config loads nothing, logs a warning deep in the log and the tool goes on with random weights. The tools
(``tools/test.py``, ``tools/train.py --load-from`` / ``load_from``) call :func:`check_checkpoint_matches`
first, which refuses a file that is no checkpoint and a checkpoint whose keys or shapes differ from the model's.
Backbone initialisation from ImageNet / DeiT weights goes through ``init_cfg``, another path, and is not
affected. The file is read with ``torch.load``'s ``weights_only`` loading (:mod:`csd_mm.compat`), so it can
never run code.

:func:`latest_complete_checkpoint` is what ``tools/train.py --resume`` resumes from: mmengine writes a
checkpoint and then the ``last_checkpoint`` file naming it, both without a temporary file, so a training killed
(or a machine lost) while writing either leaves a name that is empty, or a file that is cut short.

:func:`weights_fingerprint` names a model's weights in a few characters, so outputs written from them (the CAM
folder's record, the source bank's settings) can tell whether they came from the model at hand.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Dict, List, Mapping, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['check_checkpoint_matches', 'read_state_dict', 'state_dict_mismatch', 'is_complete_checkpoint',
           'latest_complete_checkpoint', 'set_resume_point', 'unwrap_model', 'weights_fingerprint']

# the names mmengine's CheckpointHook gives its checkpoints
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')

# mmengine's default ``revise_keys`` of ``load_checkpoint``: a DataParallel / DDP prefix is dropped.
_WRAPPER_PREFIX = re.compile(r'^module\.')


def _shown(names: List[str], limit: int = 5) -> str:
    return ', '.join(names[:limit]) + (f' ... ({len(names)} in all)' if len(names) > limit else '')


def _unsafe_global(error: BaseException):
    """The global a weights-only load refused (``posix.system``), or None when the file is no pickle at all."""
    match = re.search(r'GLOBAL ([\w.]+)', str(error))
    return match.group(1) if match else None


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of an MMEngine checkpoint (or a bare state dict), read weights-only on the CPU.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a checkpoint, cannot be loaded safely, or holds no dict of tensors.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except pickle.UnpicklingError as e:
        refused = _unsafe_global(e)
        if refused is None:
            raise ValueError(f'checkpoint {path} is not a PyTorch checkpoint (not a torch.save file)') from None
        raise ValueError(f'checkpoint {path} is refused: it refers to {refused}, which is not among the tensors '
                         'and plain data a checkpoint may hold (loading it could run code)') from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError) as e:
        raise ValueError(f'checkpoint {path} is not a PyTorch checkpoint ({type(e).__name__}: '
                         f'{str(e).splitlines()[0] if str(e) else "empty or truncated file"})') from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state or \
            not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'checkpoint {path} holds no state dict of tensors (got {type(ckpt).__name__}'
                         f'{" with keys " + _shown(sorted(map(str, ckpt))) if isinstance(ckpt, dict) else ""})')
    return {_WRAPPER_PREFIX.sub('', k): v for k, v in state.items()}


def state_dict_mismatch(model_state: Dict[str, torch.Tensor], ckpt_state: Dict[str, torch.Tensor]) -> Dict:
    """The keys a checkpoint lacks, the keys the model lacks and the keys whose shapes differ.

    Returns:
        dict: ``missing`` (in the model, not in the checkpoint), ``unexpected`` (the other way round) and
        ``shape`` (``'name: checkpoint (a, b) vs model (c, d)'``), each a sorted list.
    """
    missing = sorted(set(model_state) - set(ckpt_state))
    unexpected = sorted(set(ckpt_state) - set(model_state))
    shape = sorted(f'{k}: checkpoint {tuple(ckpt_state[k].shape)} vs model {tuple(model_state[k].shape)}'
                   for k in set(model_state) & set(ckpt_state) if ckpt_state[k].shape != model_state[k].shape)
    return dict(missing=missing, unexpected=unexpected, shape=shape)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model whose ``state_dict`` a checkpoint holds: a DDP wrapper and a TTA wrapper are taken off."""
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):  # tools/test.py --tta: the checkpoint is the wrapped segmentor's
        model = model.module
    return model


def weights_fingerprint(model: Union[torch.nn.Module, Mapping[str, torch.Tensor]]) -> str:
    """A short hex digest of a model's weights: equal for equal weights, whatever device or wrapper holds them.

    BLAKE2b (8-byte digest) over the ``state_dict`` in its key order: for every entry the UTF-8 bytes of
    ``'<name>|<dtype>|<shape>|'`` (e.g. ``'head.weight|torch.float32|(3, 2)|'``) followed by the tensor's
    bytes (moved to the CPU, C order). A wrapped model (DDP, TTA) gives its inner model's digest, and a model
    gives the digest of its own state dict, so a checkpoint read back (:func:`read_state_dict`) has the digest
    of the model that saved it.

    Args:
        model (torch.nn.Module | Mapping[str, torch.Tensor]): A model or a state dict.

    Returns:
        str: 16 hex characters.
    """
    state = model if isinstance(model, Mapping) else unwrap_model(model).state_dict()
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in state.items():
        tensor = tensor.detach()
        digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
        # the raw bytes of any dtype (bfloat16 has no numpy type): one flat uint8 view of a contiguous CPU copy
        digest.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def check_checkpoint_matches(model: torch.nn.Module, path: str) -> Dict[str, torch.Tensor]:
    """Refuses a checkpoint that is not one of ``model`` (strict keys and shapes), naming what differs.

    Args:
        model (torch.nn.Module): The built model (a DDP wrapper is unwrapped).
        path (str): The checkpoint file.

    Returns:
        Dict[str, torch.Tensor]: The checkpoint's state dict as read (:func:`read_state_dict`), so a caller that
        loads the weights itself need not read the file again (mmengine's ``load_state_dict``). Callers whose
        Runner loads ``load_from`` read it twice: for a ResNet-50 (90 MB) the check's read takes about 0.1 s.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is no (safe) checkpoint, or its keys / shapes differ from the model's: the message
            names the file, the model class and the first missing / unexpected / mis-shaped keys.
    """
    model = unwrap_model(model)
    ckpt_state = read_state_dict(path)
    diff = state_dict_mismatch(model.state_dict(), ckpt_state)
    if any(diff.values()):
        parts = [f'{len(v)} {name} key(s): {_shown(v)}' for name, v in
                 (('missing', diff['missing']), ('unexpected', diff['unexpected']), ('mis-shaped', diff['shape']))
                 if v]
        raise ValueError(f'checkpoint {path} is not a checkpoint of this {type(model).__name__} (a checkpoint of '
                         f'another model or config?): ' + '; '.join(parts))
    return ckpt_state


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (a zip archive whose directory, written last, is there)."""
    return osp.isfile(path) and zipfile.is_zipfile(path)


def latest_complete_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a training in ``work_dir`` resumes from: the one ``last_checkpoint`` names, if complete.

    Otherwise (no ``last_checkpoint``, an empty one, or one naming a missing or cut-short file) the newest
    complete ``iter_N.pth`` / ``epoch_N.pth`` of ``work_dir``, with a warning naming what was wrong.

    Args:
        work_dir (str): The training's work dir.

    Returns:
        str | None: A checkpoint path, or None when the work dir holds no complete checkpoint.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
    numbered = []
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            match = _CHECKPOINT_NAME.match(name)
            if match:
                numbered.append((int(match.group(1)), name))
    for _, name in sorted(numbered, reverse=True):
        path = osp.join(work_dir, name)
        if is_complete_checkpoint(path):
            if named is None:
                why = f'{work_dir} has no last_checkpoint file'
            elif not named:
                why = f'{pointer} is empty'
            else:
                why = f'{pointer} names {named}, which is missing or cut short'
            print_log(f'Resuming: {why} (a training stopped while writing it); resuming from {path}, the newest '
                      'complete checkpoint.', logger='current', level=30)
            return path
    return None


def set_resume_point(cfg) -> None:
    """Makes a config resume as ``tools/train.py --resume`` does: from :func:`latest_complete_checkpoint`.

    ``cfg.resume`` is set and ``cfg.load_from`` names the checkpoint, unless the config (or ``--load-from``)
    already names one. Without any complete checkpoint the training starts from the beginning
    (``cfg.resume = False``): left to itself mmengine would follow ``last_checkpoint`` to the torn file.
    """
    cfg.resume = True
    if cfg.get('load_from', None) is None:
        cfg.load_from = latest_complete_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            cfg.resume = False
