"""The command-line set-up that ``tools/train.py`` and ``tools/test.py`` share (as mmseg 1.2.2's tools do).

Both tools take ``--cfg-options``, ``--launcher`` and ``--local-rank`` (:func:`add_runner_args`), export the
local rank for the launcher (:func:`export_local_rank`) and build their config the same way
(:func:`load_runner_config`): the config file, the launcher, the overrides, then the work dir by the rule
command line > config > ``./work_dirs/<config name>``. Written once here, so the two tools cannot drift apart.
"""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

__all__ = ['add_runner_args', 'export_local_rank', 'default_work_dir', 'load_runner_config']

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Adds ``--cfg-options``, ``--launcher`` and ``--local_rank`` / ``--local-rank`` to ``parser``."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy format will be '
        'merged into config file. e.g. "model.head.loss_weight=2 train_dataloader.batch_size=4"')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """Sets ``LOCAL_RANK`` from ``--local-rank`` when the launcher did not set it (torchrun does; the older
    ``torch.distributed.launch`` passes the option instead), as mmengine reads the variable."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def default_work_dir(config_file: str) -> str:
    """``./work_dirs/<config file name without extension>``, the work dir of a config that names none."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_file))[0])


def load_runner_config(config_file: str,
                       launcher: str = 'none',
                       cfg_options: Optional[dict] = None,
                       work_dir: Optional[str] = None) -> Config:
    """Reads a config for a Runner tool: sets the launcher, merges the overrides and sets the work dir.

    Args:
        config_file (str): The config file.
        launcher (str): The ``--launcher`` value. Defaults to 'none'.
        cfg_options (dict, optional): The ``--cfg-options`` overrides. Defaults to None.
        work_dir (str, optional): The ``--work-dir`` value; it wins over the config's ``work_dir``, which wins
            over :func:`default_work_dir`. Defaults to None.

    Returns:
        Config: The config.
    """
    cfg = Config.fromfile(config_file)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(config_file)
    return cfg
