"""Runs the test loop of a config on a checkpoint: CAM configs write CAMs and report the seed mIoU sweep,
segmentation configs report mmseg's IoUMetric (``--out-metrics`` also writes the metrics to a JSON file).

Examples::

    python tools/test.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py work_dirs/x/iter_300.pth --cam-dir work_dirs/x/cams
    bash tools/dist_test.sh configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py ckpt.pth 8
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import csd_mm  # noqa: F401  (adapts third-party breakages and registers every part)
from csd_mm.compat import setup_cpu_distributed
from csd_mm.engine.hooks import CAMGenerationHook
from csd_mm.utils.fileio import atomic_write_bytes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (CAM generation + seed evaluation) a csd_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--cam-dir', help='where the CAM files (.npz) go; default: <work_dir>/cams or the config\'s hook')
    parser.add_argument('--no-save-cams', action='store_true', help='only evaluate, write no CAM files')
    parser.add_argument('--out-metrics', help='also write the test metrics (e.g. mIoU) to this JSON file (atomically)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy format will be '
        'merged into config file.')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _configure_cam_hook(cfg: Config, cam_dir, save: bool) -> None:
    """Points the config's CAMGenerationHook at ``cam_dir``; adds one when ``--cam-dir`` is given and the
    config has none. Configs of other models (e.g. the DeepLab ones) are left alone."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    cam_hooks = [h for h in hooks if h.get('type') in (CAMGenerationHook, 'CAMGenerationHook')]
    if not cam_hooks:
        if cam_dir is None or not save:
            return
        cam_hooks = [dict(type=CAMGenerationHook, dataloader=None)]
        hooks += cam_hooks
    for hook in cam_hooks:
        hook['save_in_test'] = save
        hook['dataloader'] = None  # test.py only evaluates; the after-train pass belongs to training
        hook.pop('source_bank', None)
        if cam_dir is not None:
            hook['out_dir'] = osp.abspath(cam_dir)
    cfg.custom_hooks = hooks


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    _configure_cam_hook(cfg, args.cam_dir, not args.no_save_cams)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if args.out_metrics and runner.rank == 0:
        write_metrics(args.out_metrics, metrics)


def write_metrics(path: str, metrics: dict) -> None:
    """Writes the metrics dict of ``runner.test()`` as JSON (numpy scalars and arrays as numbers / lists)."""
    def plain(value):
        if hasattr(value, 'tolist'):
            return value.tolist()
        raise TypeError(f'metric value of type {type(value).__name__} is not JSON serialisable')
    atomic_write_bytes(path, json.dumps(metrics, indent=1, default=plain).encode())


if __name__ == '__main__':
    main()
