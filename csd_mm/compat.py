"""The one place that adapts third-party behaviour (see docs/environment.md).

Every adaptation here is narrow, idempotent and a no-op where the problem does not exist, so the package
works unchanged with full mmcv, with an older torch, and on GPU clusters:

* ``mmcv-lite`` has no compiled ops, yet mmseg imports ``mmcv.ops`` unguarded in modules that every
  ``import mmseg.models`` pulls in. When (and only when) ``mmcv._ext`` is missing, a stand-in ``mmcv.ops``
  module is installed that offers mmcv's own pure-PyTorch ``point_sample`` and raises
  ``ModuleNotFoundError`` for every other op, which is what mmseg's guarded imports expect.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; mmengine 0.10.7 does not pass the argument and
  its checkpoints hold a few of its own plain-data classes. Those classes (and nothing else) are allow-listed,
  so loading stays ``weights_only``: a checkpoint file can never run code.
* ``--launcher pytorch`` and ``--launcher slurm`` make mmengine call ``torch.cuda.set_device``; on CPU-only
  machines :func:`setup_cpu_distributed` initialises a gloo process group first (for slurm from the
  ``SLURM_*`` variables, as mmengine does) and wraps the model in a DDP that does not pass CUDA device ids.
* mmengine 0.10.7's ``BaseDataset._copy_without_annotation(self, memo=dict())`` (behind ``get_subset``) shares
  one default deepcopy memo across calls and records ``memo[id(self)]`` without keeping ``self`` alive: once an
  earlier dataset is freed, a new object that reuses its address (e.g. a pipeline transform) is "copied" as the
  old sub-dataset. :func:`fresh_subset_memo` gives every call its own memo.
* mmcv 2.1's ``adjust_hue`` shifts the hue channel by ``np.uint8(hue_factor * 255)``, which numpy >= 2 refuses
  for a negative factor (``OverflowError``), so half of mmpretrain's ``ColorJitter(hue=...)`` draws crash.
  :func:`wrap_negative_hue_shift` makes a negative shift wrap around as it did under numpy 1 (and as
  torchvision's ``adjust_hue`` does): ``hue_shift(-0.1) == 231``.
"""
import importlib.util
import os
import pickle
import subprocess
import sys
import types
import warnings
from typing import Optional

import numpy as np
import torch

__all__ = ['apply', 'install_mmcv_ops_fallback', 'allow_mmengine_checkpoint_types', 'finish_distributed',
           'setup_cpu_distributed', 'fresh_subset_memo', 'hue_shift', 'wrap_negative_hue_shift']

_APPLIED = False


def _mmcv_has_compiled_ops() -> bool:
    return importlib.util.find_spec('mmcv') is not None and \
        importlib.util.find_spec('mmcv._ext') is not None


def install_mmcv_ops_fallback() -> bool:
    """Installs a pure-PyTorch stand-in for ``mmcv.ops`` when mmcv has no compiled ops.

    Returns:
        bool: True if the stand-in was installed, False if the real ``mmcv.ops`` is usable (or already
        imported) and nothing was changed.
    """
    if 'mmcv.ops' in sys.modules or importlib.util.find_spec('mmcv') is None or _mmcv_has_compiled_ops():
        return False
    import mmcv
    # mmcv's own point_sample.py is pure PyTorch; load it by path since importing it as
    # ``mmcv.ops.point_sample`` would run the compiled-ops ``mmcv/ops/__init__.py``.
    path = os.path.join(os.path.dirname(mmcv.__file__), 'ops', 'point_sample.py')
    spec = importlib.util.spec_from_file_location('mmcv.ops.point_sample', path)
    point_sample_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(point_sample_mod)

    ops = types.ModuleType('mmcv.ops')
    ops.__doc__ = 'csd_mm stand-in for mmcv.ops under mmcv-lite: only pure-PyTorch ops are available.'
    ops.__path__ = []  # a package, so ``mmcv.ops.point_sample`` resolves to the module above
    ops.point_sample = point_sample_mod.point_sample
    ops.bilinear_grid_sample = point_sample_mod.bilinear_grid_sample
    ops.SimpleRoIAlign = point_sample_mod.SimpleRoIAlign

    def sigmoid_focal_loss(*args, **kwargs):
        # mmseg imports this name unguarded but only calls it for CUDA inputs; it has a PyTorch path.
        raise RuntimeError('mmcv.ops.sigmoid_focal_loss needs full mmcv (compiled ops); this environment '
                           'has mmcv-lite.')

    ops.sigmoid_focal_loss = sigmoid_focal_loss

    def __getattr__(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        # ModuleNotFoundError (not AttributeError) so that mmseg's
        # ``try: from mmcv.ops import X / except ModuleNotFoundError`` guards keep working.
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} needs the compiled ops of full mmcv; this environment has mmcv-lite. '
            'Install full mmcv 2.1.0 (see docs/environment.md) to use it.')

    ops.__getattr__ = __getattr__
    sys.modules['mmcv.ops'] = ops
    sys.modules['mmcv.ops.point_sample'] = point_sample_mod
    mmcv.ops = ops
    return True


def allow_mmengine_checkpoint_types() -> None:
    """Allow-lists the plain-data classes that mmengine writes into checkpoints.

    Only classes that hold data and cannot run code on unpickling are listed. No-op on torch < 2.4 (no
    ``add_safe_globals``), where ``weights_only`` was not the default anyway.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return
    import numpy as np
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer]
    # numpy scalars / arrays kept by the message hub (e.g. logged values)
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    safe += [_reconstruct, scalar, np.ndarray, np.dtype]
    safe += [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8',
                                         'bool')]
    # HistoryBuffer pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``; a general ``getattr``
    # would open the door to arbitrary attribute access, so only that exact lookup is honoured.
    safe += [(_history_buffer_getattr, name) for name in ('__builtin__.getattr', 'builtins.getattr')]
    add_safe_globals(safe)


def _history_buffer_getattr(obj, name: str):
    """The one ``getattr`` a checkpoint may perform: a statistics method of mmengine's HistoryBuffer."""
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics methods are allowed')


def _slurm_dist_env() -> None:
    """Sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the variables
    ``srun`` gives each task, as mmengine's ``_init_dist_slurm`` does (an existing ``MASTER_ADDR`` /
    ``MASTER_PORT`` is kept; otherwise the first host of ``SLURM_NODELIST`` and port 29500)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm: {", ".join(missing)} not set; start the tool with srun '
                           '(tools/slurm_train.sh / tools/slurm_test.sh)')
    proc_id = int(os.environ['SLURM_PROCID'])
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True,
                                   text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(f'--launcher slurm: cannot resolve the first host of SLURM_NODELIST={node_list!r} '
                               f'with scontrol ({e}); set MASTER_ADDR') from e
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def finish_distributed() -> bool:
    """Ends a distributed run cleanly: every rank reaches this point, then the process group is destroyed.

    Without it the process group is torn down by the interpreter's exit, in whatever order its objects go, and a
    gloo rank could abort there ("terminate called without an active exception", exit code -6) after all of its
    work was done, failing the whole ``torchrun`` job (seen with ``tools/dist_test.sh`` while the CAM writer
    thread had just ended). PyTorch asks for ``destroy_process_group`` at the end of a program. Does nothing
    when no process group is initialised.

    Returns:
        bool: Whether a process group was ended (then end the process with :func:`exit_without_teardown`).
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        return True
    return False


def exit_without_teardown(code: int = 0) -> None:
    """Ends a finished distributed rank at once: flushes the logs and the console, then ``os._exit(code)``.

    ``destroy_process_group`` only drops PyTorch's own reference to the group: the model's DDP wrapper still holds
    it, so gloo's worker threads are destroyed during the interpreter's finalization, where a rank can still
    abort ("terminate called without an active exception", SIGABRT, failing the whole ``torchrun`` job; seen
    in 1 of 8 runs of the ``tools/dist_test.sh`` test on 2026-12-01, after every file was written). Every output is written
    atomically and closed by then, so nothing is lost by skipping the finalization.
    """
    import logging
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing left to flush
            pass
    os._exit(code)


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Lets ``--launcher pytorch`` (torchrun) and ``--launcher slurm`` (srun) run as CPU processes (gloo), e.g.
    two processes on a laptop or in CI, or the tasks of a CPU-only slurm allocation.

    On a machine with CUDA this does nothing and mmengine's own path (NCCL, ``set_device``) is used.

    Args:
        cfg (mmengine.Config): The config; its ``env_cfg.dist_cfg`` backend and ``model_wrapper_cfg`` are
            adapted in place.
        launcher (str): The ``--launcher`` value.

    Returns:
        bool: True if a gloo process group was initialised here.
    """
    import torch.distributed as dist
    if launcher == 'none' or torch.cuda.is_available():
        return False
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg', {}) or {})
    dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='CPUDistributedDataParallel')
    if not dist.is_initialized():
        if launcher not in ('pytorch', 'slurm'):
            raise RuntimeError(f'launcher {launcher!r} on a CPU-only machine is not supported; use pytorch '
                               '(tools/dist_train.sh) or slurm (tools/slurm_train.sh)')
        if launcher == 'slurm':
            _slurm_dist_env()
        dist.init_process_group(backend='gloo')
    return True


def _register_cpu_ddp() -> None:
    from mmengine.model import MMDistributedDataParallel
    from mmengine.registry import MODEL_WRAPPERS

    if 'CPUDistributedDataParallel' in MODEL_WRAPPERS.module_dict:
        return

    @MODEL_WRAPPERS.register_module()
    class CPUDistributedDataParallel(MMDistributedDataParallel):
        """MMDistributedDataParallel for CPU modules: drops the CUDA ``device_ids`` that the Runner adds."""

        def __init__(self, module, device_ids: Optional[list] = None, **kwargs):
            kwargs.setdefault('broadcast_buffers', False)
            super().__init__(module=module, device_ids=None, **kwargs)


def fresh_subset_memo() -> None:
    """Makes ``BaseDataset._copy_without_annotation`` use a new deepcopy memo per call (see the module
    docstring); a no-op where mmengine's default memo is not a shared dict."""
    from mmengine.dataset import BaseDataset
    original = BaseDataset._copy_without_annotation
    defaults = getattr(original, '__defaults__', None)
    if getattr(original, '_csd_mm_fresh_memo', False) or not (defaults and isinstance(defaults[0], dict)):
        return

    def _copy_without_annotation(self, memo=None):
        return original(self, {} if memo is None else memo)

    _copy_without_annotation._csd_mm_fresh_memo = True
    _copy_without_annotation.__doc__ = original.__doc__
    BaseDataset._copy_without_annotation = _copy_without_annotation


def hue_shift(hue_factor: float) -> int:
    """The uint8 shift of the hue channel that a hue factor means: ``trunc(hue_factor * 255) mod 256``.

    What ``np.uint8(hue_factor * 255)`` gave under numpy 1 (a C cast: truncation toward zero, then wrap-around),
    e.g. ``hue_shift(0.1) == 25``, ``hue_shift(-0.1) == 231`` (-25), ``hue_shift(-0.5) == 129`` (-127).

    Args:
        hue_factor (float): Hue factor in [-0.5, 0.5].

    Returns:
        int: The shift in [0, 255].
    """
    return int(hue_factor * 255) % 256


def _numpy_refuses_negative_uint8() -> bool:
    try:
        np.uint8(-25.5)
    except OverflowError:
        return True
    return False


def wrap_negative_hue_shift() -> None:
    """Gives mmcv's ``adjust_hue`` (``mmcv``, ``mmcv.image``, ``mmcv.image.photometric``) the numpy-1 shift of
    negative hue factors (see the module docstring); a no-op where numpy still casts them.

    Non-negative factors and invalid arguments go to mmcv's own function unchanged.
    """
    import cv2
    import mmcv
    import mmcv.image
    from mmcv.image import photometric
    from PIL import Image
    original = photometric.adjust_hue
    if getattr(original, '_csd_mm_wraps_hue', False) or not _numpy_refuses_negative_uint8():
        return

    def adjust_hue(img: np.ndarray, hue_factor: float, backend: Optional[str] = None) -> np.ndarray:
        if not (-0.5 <= hue_factor < 0 and isinstance(img, np.ndarray) and img.ndim == 3):
            return original(img, hue_factor, backend)  # its own result, or its own error
        backend = photometric.imread_backend if backend is None else backend
        if backend not in ('cv2', 'pillow'):
            return original(img, hue_factor, backend)
        shift = hue_shift(hue_factor)
        if backend == 'pillow':  # mmcv's pillow path: BGR -> RGB -> PIL HSV, H shifted, back
            assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
            h, s, v = Image.fromarray(img[..., ::-1], mode='RGB').convert('HSV').split()
            h = Image.fromarray(((np.asarray(h, np.int64) + shift) % 256).astype(np.uint8), 'L')
            rgb = Image.merge('HSV', (h, s, v)).convert('RGB')
            return np.array(rgb, dtype=img.dtype)[..., ::-1]
        hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)  # mmcv's cv2 path
        hsv[..., 0] = ((hsv[..., 0].astype(np.int64) + shift) % 256).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(img.dtype)

    adjust_hue._csd_mm_wraps_hue = True
    adjust_hue.__doc__ = original.__doc__
    for module in (mmcv, mmcv.image, photometric):
        if getattr(module, 'adjust_hue', None) is original:
            module.adjust_hue = adjust_hue


def apply() -> None:
    """Applies every adaptation once; safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    # mmcv-lite cannot offer this op and says so at every import of mmcv.cnn; nothing here uses it.
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    # mmcv's adjust_color says so at every pillow call; mmpretrain's ColorJitter (saturation) passes only alpha
    warnings.filterwarnings('ignore', message="Only use 'alpha' for pillow backend.")
    install_mmcv_ops_fallback()
    allow_mmengine_checkpoint_types()
    _register_cpu_ddp()
    fresh_subset_memo()
    wrap_negative_hue_shift()
    _APPLIED = True
