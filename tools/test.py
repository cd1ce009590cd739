"""Runs the test loop of a config on a checkpoint: CAM configs write CAMs and report the seed mIoU sweep,
segmentation configs report mmseg's IoUMetric (``--out-metrics`` also writes the metrics to a JSON file).

Options by kind of config (a CAM classifier or an mmseg segmentor; other configs refuse --cam-dir, --out,
--show-dir and --tta). A refused option stops the tool before anything runs, with an ``error:`` line:

============== ===================================================== ==========================================
option         CAM config (stages 0 / 1)                             segmentation config (stage 3, DeepLab)
============== ===================================================== ==========================================
--cam-dir      where the CAM files go                                refused (a segmentor has no CAMs)
--no-save-cams evaluate only, write no CAM files                     accepted, changes nothing (no CAMs)
--out          same as --cam-dir (the CAM files are the predictions) ``<out>/<image name>.png`` class ids
                                                                     (mmseg: IoUMetric's ``output_dir``)
--show-dir     ``<show-dir>/<img_id>.png``: image, heatmap per       mmseg's SegVisualizationHook on every
               class, seeds at the sweep's best background score     image: ``<show-dir>/vis_data/vis_image/``
--tta          refused: ``model.test_cfg`` scales and flips already  the config's ``tta_model`` (default
               (change them with --cfg-options)                      SegTTAModel) and ``tta_pipeline``
============== ===================================================== ==========================================

Examples::

    python tools/test.py configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py work_dirs/x/iter_300.pth --cam-dir work_dirs/x/cams
    python tools/test.py configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py ckpt.pth --tta --out preds
    bash tools/dist_test.sh configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py ckpt.pth 8
    GPUS=8 bash tools/slurm_test.sh PARTITION JOB configs/resnet50_cam/resnet50_cam_1xb16_5e_voc12aug_512.py ckpt.pth
"""
import argparse
import json
import os.path as osp

import numpy as np
from mmengine.config import Config
from mmengine.config.lazy import LazyObject
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

import csd_mm  # noqa: F401  (adapts third-party breakages and registers every part)
from csd_mm.compat import exit_without_teardown, finish_distributed, setup_cpu_distributed
from csd_mm.engine.hooks import CAMGenerationHook
from csd_mm.utils.checkpoint import check_checkpoint_matches
from csd_mm.utils.cli import add_runner_args, export_local_rank, load_runner_config
from csd_mm.utils.fileio import StaleOutputError, atomic_write_bytes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (CAM generation + seed evaluation) a csd_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--cam-dir', help='CAM configs: where the CAM files (.npz) go; default: <work_dir>/cams or the config\'s '
        'hook. A folder holding the CAMs of another checkpoint is refused (its .cams_of.json names the weights)')
    parser.add_argument(
        '--no-save-cams', action='store_true',
        help='CAM configs: only evaluate, write no CAM files (a segmentation config writes none anyway)')
    parser.add_argument('--out-metrics', help='also write the test metrics (e.g. mIoU) to this JSON file (atomically)')
    parser.add_argument(
        '--out', help='directory for the predictions: segmentation configs write <image name>.png of class ids '
        '(mmseg\'s IoUMetric output_dir), CAM configs their CAM files (same as --cam-dir)')
    parser.add_argument(
        '--show-dir', help='directory for drawn predictions: segmentation configs draw every prediction over its '
        'image (mmseg\'s SegVisualizationHook, <show-dir>/vis_data/vis_image/), CAM configs every CAM file the '
        'test writes (<show-dir>/<img_id>.png: image, heatmap per class, seeds at the best background score)')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation, segmentation configs: the config\'s tta_model and tta_pipeline (CAM configs '
        'already aggregate the scales and flips of model.test_cfg)')
    add_runner_args(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def _config_type(cls) -> LazyObject:
    """``cls`` as a Python-style config holds an imported class: a lazy import, which the Runner's config dump
    prints as its dotted name (a class object there makes the dump, and so the Runner, fail)."""
    return LazyObject(cls.__module__, cls.__name__)


def model_kind(cfg: Config) -> str:
    """``'cam'`` for a CAM classifier (:class:`~csd_mm.models.classifiers.BaseCAMClassifier`), ``'segmentor'``
    for an mmseg segmentor, ``'other'`` for anything else. ``model.type`` may be a class or a registry name."""
    from mmseg.models.segmentors import BaseSegmentor
    from mmseg.registry import MODELS

    from csd_mm.models.classifiers import BaseCAMClassifier
    model_type = (cfg.get('model', None) or {}).get('type', None)
    model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if isinstance(model_cls, type) and issubclass(model_cls, BaseCAMClassifier):
        return 'cam'
    if isinstance(model_cls, type) and issubclass(model_cls, BaseSegmentor):
        return 'segmentor'
    return 'other'


def check_options(args: argparse.Namespace, kind: str, cfg: Config) -> None:
    """Refuses options that would do nothing or break for this kind of config (see the module docstring).

    Raises:
        ValueError: naming the option, the config file and the problem.
    """
    config = args.config
    if kind != 'cam':
        if args.cam_dir is not None:
            raise ValueError(f'--cam-dir: {config} is not a CAM classifier config and writes no CAMs; '
                             '--out writes the predictions of a segmentation config')
        if kind == 'other':
            given = [opt for opt, val in (('--out', args.out), ('--show-dir', args.show_dir), ('--tta', args.tta))
                     if val]
            if given:
                raise ValueError(f'{", ".join(given)}: {config} is neither a CAM classifier nor an mmseg segmentor '
                                 'config; these options work with those two')
        if args.tta and cfg.get('tta_pipeline', None) is None:
            raise ValueError(f'--tta: {config} defines no tta_pipeline (the test pipeline with TestTimeAug, as '
                             'in configs/_base_/datasets/voc12aug_pseudo_masks.py)')
        return
    if args.tta:
        raise ValueError(f'--tta: {config} is a CAM classifier config; its CAMs already aggregate the scales and '
                         f'flips of model.test_cfg ({dict(cfg.model.get("test_cfg", None) or {})}); change them '
                         'with --cfg-options model.test_cfg.scales=... model.test_cfg.flip=...')
    if args.out is not None and args.cam_dir is not None and osp.abspath(args.out) != osp.abspath(args.cam_dir):
        raise ValueError(f'--out {args.out} and --cam-dir {args.cam_dir}: for a CAM config both name the CAM '
                         'folder; give one of them')
    for opt, val in (('--out', args.out), ('--show-dir', args.show_dir)):
        if val is not None and args.no_save_cams:
            raise ValueError(f'{opt} with --no-save-cams: {opt} needs the CAM files that --no-save-cams turns off')


def _configure_cam_hook(cfg: Config, cam_dir, save: bool) -> None:
    """Points the config's CAMGenerationHook at ``cam_dir``; adds one when ``--cam-dir`` is given and the
    config has none. Configs of other models (e.g. the DeepLab ones) are left alone."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    cam_hooks = [h for h in hooks if h.get('type') in (CAMGenerationHook, 'CAMGenerationHook')]
    if not cam_hooks:
        if cam_dir is None or not save:
            return
        cam_hooks = [dict(type=_config_type(CAMGenerationHook), dataloader=None)]
        hooks += cam_hooks
    for hook in cam_hooks:
        hook['save_in_test'] = save
        hook['dataloader'] = None  # test.py only evaluates; the after-train pass belongs to training
        hook.pop('source_bank', None)
        if cam_dir is not None:
            hook['out_dir'] = osp.abspath(cam_dir)
            hook['out_dir_from_cli'] = True  # the user named it, so it may lie outside the work dir
    cfg.custom_hooks = hooks


def _is_type(type_, cls) -> bool:
    """Whether a config ``type`` (class, lazy import or registry name) is ``cls`` or a subclass."""
    if isinstance(type_, type):
        return issubclass(type_, cls)
    return str(type_).split('.')[-1] == cls.__name__


def configure_segmentation_options(cfg: Config, args: argparse.Namespace) -> None:
    """mmseg 1.2.2's ``--out``, ``--show-dir`` and ``--tta`` on a segmentor config (types as classes or names).

    Unlike mmseg's default (interval 50), a visualization hook added here draws every image; a config's own
    ``default_hooks.visualization`` keeps its interval.
    """
    from mmengine.visualization import LocalVisBackend
    from mmseg.engine.hooks import SegVisualizationHook
    from mmseg.models import SegTTAModel
    from mmseg.visualization import SegLocalVisualizer
    if args.out is not None:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        for evaluator in evaluators:
            evaluator['output_dir'] = osp.abspath(args.out)
    if args.show_dir is not None:
        if cfg.default_hooks.get('visualization', None) is None:
            cfg.default_hooks['visualization'] = dict(type=_config_type(SegVisualizationHook), interval=1)
        cfg.default_hooks['visualization']['draw'] = True
        # (changed in place: reading a Python-style config's entry into a new dict would turn its lazy imports
        # into classes)
        if cfg.get('visualizer', None) is None:
            cfg.visualizer = dict(vis_backends=[dict(type=_config_type(LocalVisBackend))], name='visualizer')
        if not _is_type(cfg.visualizer.get('type', None), SegLocalVisualizer):
            cfg.visualizer['type'] = _config_type(SegLocalVisualizer)
        cfg.visualizer['save_dir'] = osp.abspath(args.show_dir)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        if cfg.get('tta_model', None) is None:
            cfg.tta_model = dict(type=_config_type(SegTTAModel))
        cfg.tta_model['module'] = cfg.model
        cfg.model = cfg.tta_model


def main() -> None:
    args = parse_args()
    cfg = load_runner_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    kind = model_kind(cfg)
    try:
        check_options(args, kind, cfg)
    except ValueError as e:
        raise SystemExit(f'error: {e}')
    if kind == 'cam':
        _configure_cam_hook(cfg, args.cam_dir if args.cam_dir is not None else args.out, not args.no_save_cams)
    elif kind == 'segmentor':
        configure_segmentation_options(cfg, args)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    try:  # mmengine loads load_from non-strictly: a checkpoint of another model would test random weights
        check_checkpoint_matches(runner.model, args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    try:
        metrics = runner.test()
    except StaleOutputError as e:  # a CAM folder of other weights (the message says what to delete)
        raise SystemExit(f'error: {e}')
    if args.out_metrics and runner.rank == 0:
        write_metrics(args.out_metrics, metrics)
    # every rank's CAM files are written; the ranks leave the process group together, before rank 0 draws alone
    # (the others waiting in a barrier for the drawing could pass the backend's timeout on a large split)
    distributed = finish_distributed()
    if kind == 'cam' and args.show_dir is not None and runner.rank == 0:
        draw_cams(runner, args.show_dir, metrics)  # mmengine's visualizers draw on rank 0 (master_only)
    if distributed:
        exit_without_teardown()


def write_metrics(path: str, metrics: dict) -> None:
    """Writes the metrics dict of ``runner.test()`` as JSON (numpy scalars and arrays as numbers / lists)."""
    def plain(value):
        if hasattr(value, 'tolist'):
            return value.tolist()
        raise TypeError(f'metric value of type {type(value).__name__} is not JSON serialisable')
    atomic_write_bytes(path, json.dumps(metrics, indent=1, default=plain).encode())


def draw_cams(runner: Runner, show_dir: str, metrics: dict) -> None:
    """Draws the CAM file of every test image into ``show_dir/<img_id>.png``: the image, one heatmap per class
    and, when the test reported a seed sweep, the seeds at its best background score."""
    import mmcv
    from mmseg.datasets import PascalVOCDataset

    from csd_mm.utils.cam_io import cam_path, load_cam
    from csd_mm.utils.fileio import write_png
    from csd_mm.visualization import draw_cam_row
    hook = next(h for h in runner.hooks if isinstance(h, CAMGenerationHook))
    cam_dir = hook._resolve_out_dir(runner)
    threshold = next((v for k, v in metrics.items() if k.split('/')[-1] == 'best_threshold'), None)
    dataset = runner.test_dataloader.dataset
    names = list(dataset.metainfo['classes'])
    palette = np.asarray(dataset.metainfo.get('palette') or PascalVOCDataset.METAINFO['palette'], np.uint8)
    progress = ProgressBar(len(dataset))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img_id = info.get('img_id') or osp.splitext(osp.basename(info['img_path']))[0]
        cam, keys = load_cam(cam_path(cam_dir, img_id))
        img = mmcv.imread(info['img_path'])
        try:
            row = draw_cam_row(img, cam, keys, names, palette, None if threshold is None else float(threshold))
        except ValueError as e:
            raise ValueError(f'{info["img_path"]}: {e}') from e
        write_png(osp.join(show_dir, f'{img_id}.png'), row)
        progress.update()
    runner.logger.info(f'drew {len(dataset)} CAM files of {cam_dir} into {show_dir}'
                       + ('' if threshold is None else f' (seeds at background score {float(threshold):.2f})'))


if __name__ == '__main__':
    main()
