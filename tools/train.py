"""Trains a model from a csd_mm config (stock OpenMMLab entry point).

Examples::

    python tools/train.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py
    python tools/train.py configs/csd/resnet50_csd_voc.py --work-dir work_dirs/r50_csd --resume
    bash tools/dist_train.sh configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py 4 --amp   # on GPUs
    python tools/train.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py --tensorboard  # + TensorBoard events
    bash tools/dist_train.sh configs/csd/mctformer_csd_voc.py 8
    GPUS=8 GPUS_PER_NODE=4 bash tools/slurm_train.sh PARTITION JOB configs/csd/mctformer_csd_voc.py
"""
import argparse
import importlib.util
import logging
import os

from mmengine.config import Config
from mmengine.config.lazy import LazyObject
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner import Runner

import csd_mm  # noqa: F401  (adapts third-party breakages and registers every part)
from csd_mm.compat import exit_without_teardown, finish_distributed, setup_cpu_distributed
from csd_mm.utils.checkpoint import check_checkpoint_matches, set_resume_point
from csd_mm.utils.cli import add_runner_args, export_local_rank, load_runner_config
from csd_mm.utils.fileio import StaleOutputError
from csd_mm.utils.process import WorkDirLockedError, lock_work_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a csd_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true',
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--load-from', help='checkpoint to initialise the model from (no resume)')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic-mixed-precision training (AmpOptimWrapper, dynamic loss scale; CUDA / NPU / MLU / '
        'MUSA devices only)')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log to TensorBoard: adds mmengine\'s TensorboardVisBackend to the visualizer (event files in '
        '<work_dir>/<timestamp>/vis_data/; needs the tensorboard package: pip install tensorboard)')
    add_runner_args(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def _type_name(type_) -> str:
    return type_ if isinstance(type_, str) else getattr(type_, '__name__', repr(type_))


def enable_amp(cfg: Config, config_file: str = 'the config') -> None:
    """mmseg 1.2.2's ``--amp``: the config's ``OptimWrapper`` becomes an ``AmpOptimWrapper`` with a dynamic loss
    scale. ``optim_wrapper.type`` may be the class (Python-style configs, as here) or its registry name; a type
    given as a class stays a class, a name stays a name.

    Raises:
        ValueError: the config has no ``optim_wrapper``, or its type is another wrapper (mmseg asserts the
            same).
    """
    optim_wrapper = cfg.get('optim_wrapper', None)
    if optim_wrapper is None:
        raise ValueError(f'--amp: {config_file} has no optim_wrapper to switch to AmpOptimWrapper')
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    name = _type_name(wrapper_type)
    is_class = isinstance(wrapper_type, type)
    if (is_class and issubclass(wrapper_type, AmpOptimWrapper)) or name.split('.')[-1] == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.', logger='current', level=logging.WARNING)
    elif wrapper_type is OptimWrapper or (not is_class and name.split('.')[-1] == 'OptimWrapper'):
        # a class stays a class: a lazy import as in a Python-style config (the Runner's config dump prints it
        # as its dotted name; a class object there would make the dump fail)
        optim_wrapper['type'] = LazyObject('mmengine.optim', 'AmpOptimWrapper') if is_class else 'AmpOptimWrapper'
        optim_wrapper['loss_scale'] = 'dynamic'
    else:
        raise ValueError(f'--amp: {config_file} sets optim_wrapper.type={name}; --amp only replaces '
                         'OptimWrapper (by AmpOptimWrapper). Set an AMP-capable wrapper in the config instead.')


def enable_tensorboard(cfg: Config) -> None:
    """``--tensorboard``: appends mmengine's ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends`` (the
    LocalVisBackend's ``scalars.json`` stays), so the scalars the LoggerHook records also go to TensorBoard event
    files in ``<work_dir>/<timestamp>/vis_data/``.

    Raises:
        ValueError: the config has no ``visualizer``, or neither ``tensorboard`` nor ``tensorboardX`` is
            installed (mmengine would only fail at the first logged iteration).
    """
    if importlib.util.find_spec('tensorboard') is None and importlib.util.find_spec('tensorboardX') is None:
        raise ValueError('--tensorboard needs the tensorboard package (torch.utils.tensorboard writes through '
                         'it), which is not installed: pip install tensorboard')
    visualizer = cfg.get('visualizer', None)
    if visualizer is None:
        raise ValueError('--tensorboard: the config has no visualizer to add a TensorboardVisBackend to')
    backends = list(visualizer.get('vis_backends', None) or [])
    if not any(_type_name(b.get('type', '')).endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer['vis_backends'] = backends


def check_amp_device() -> None:
    """Raises ValueError unless a device that mmengine 0.10.7's AmpOptimWrapper supports is present (CUDA, NPU,
    MLU, MUSA): on CPU it would stop with a bare assertion. (No CPU fallback here: bfloat16 autocast on CPU is
    a different numerical recipe from the float16 + loss scaling that --amp means on GPUs, and rarely faster.)"""
    if not (is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()):
        raise ValueError('--amp needs a GPU: mmengine\'s AmpOptimWrapper (torch.cuda.amp, float16 with loss '
                         'scaling) runs on CUDA, NPU, MLU or MUSA devices only, and this machine has none. '
                         'Train without --amp on CPU.')


def launch_rank() -> int:
    """This process's global rank as its launcher set it (torchrun, slurm, mpi); 0 when not distributed."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def main() -> None:
    args = parse_args()
    # work_dir priority: CLI > config > ./work_dirs/<config name>
    cfg = load_runner_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.load_from is not None:
        cfg.load_from = args.load_from
    if args.resume:
        # mmengine would trust last_checkpoint; an empty one or a cut-short file would stop the resume
        set_resume_point(cfg)
    if args.amp:
        try:
            enable_amp(cfg, args.config)
            check_amp_device()
        except ValueError as e:
            raise SystemExit(f'error: {e}')
    if args.tensorboard:
        try:
            enable_tensorboard(cfg)
        except ValueError as e:
            raise SystemExit(f'error: {e}')
    if launch_rank() == 0:
        # one training per work dir: a second one (e.g. a rerun while a killed parent's training still runs)
        # would overwrite the first's checkpoints and CAMs; the kernel drops the lock when this process ends
        try:
            lock_work_dir(cfg.work_dir)
        except WorkDirLockedError as e:
            raise SystemExit(f'error: {e}')
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from', None):
        try:  # mmengine loads load_from non-strictly: a checkpoint of another model would load nothing, silently
            check_checkpoint_matches(runner.model, cfg.load_from)
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f'error: {e}')
    try:
        runner.train()
    except StaleOutputError as e:  # outputs of other weights or settings (the message says what to delete)
        raise SystemExit(f'error: {e}')
    if finish_distributed():
        exit_without_teardown()


if __name__ == '__main__':
    main()
