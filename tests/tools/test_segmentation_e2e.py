"""End to end, the segmentation step of WSSS with the stock tools: tools/train.py trains the toy DeepLabV3+ on a
pseudo-mask folder and validates on toy val (IoUMetric), then tools/test.py evaluates the checkpoint and
SegPredictionExportHook writes the predictions as PNGs in the VOC results layout, --out writes them as mmseg
does, --tta and --show-dir run mmseg's test-time augmentation and visualization. Real Runner, real files."""
import re
from pathlib import Path

import numpy as np
import pytest

import csd_mm  # noqa: F401  (mmcv-lite fallbacks before mmseg; registers every part)

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs/toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py'
TINY = ['train_dataloader.batch_size=4', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'param_scheduler.0.end=4', 'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1']
NUM_CLASSES = 6


def _ids(root: Path, split: str):
    return (root / f'data/toy_voc/ImageSets/Segmentation/{split}.txt').read_text().split()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A cwd with data/toy_voc (the path the toy config reads) and a pseudo-mask folder: the ground truth of the
    train_aug images with every 'car' pixel turned into 'ignore' (a corrupted, not identical, label set)."""
    root = tmp_path_factory.mktemp('seg_e2e')
    from csd_mm.datasets import make_toy_voc  # in-process: one interpreter start less
    make_toy_voc(str(root / 'data/toy_voc'), num_train=24, num_val=4, seed=3)
    from csd_mm.utils.fileio import read_png, write_png
    masks = root / 'pseudo_masks'
    masks.mkdir()
    for img_id in _ids(root, 'train_aug'):
        gt = read_png(str(root / f'data/toy_voc/SegmentationClassAug/{img_id}.png'))
        write_png(str(masks / f'{img_id}.png'), np.where(gt == 3, 255, gt).astype(np.uint8))
    return root


@pytest.fixture(scope='module')
def trained(workspace, run_tool):
    work = workspace / 'work_dirs/deeplab'
    log = run_tool([REPO / 'tools/train.py', CFG, '--work-dir', work, '--cfg-options', *TINY,
                   f'train_dataloader.dataset.data_prefix.seg_map_path={workspace / "pseudo_masks"}'], cwd=workspace)
    return work, log


@pytest.mark.slow
def test_train_on_pseudo_masks_then_val_miou(trained):
    work, log = trained
    assert (work / 'iter_4.pth').is_file()
    losses = re.findall(r'Iter\(train\) \[4/4\].*decode\.loss_ce: ([0-9.e+-]+).*aux\.loss_ce: ([0-9.e+-]+)', log)
    assert losses and all(np.isfinite(float(v)) and float(v) > 0 for v in losses[-1])
    miou = re.findall(r'Iter\(val\) \[4/4\].*mIoU: ([0-9.]+)', log)
    assert len(miou) == 1, 'exactly one validation, at the end of the 4 iterations'
    assert 0.0 < float(miou[0]) <= 100.0
    assert not (work / 'preds').exists()  # the export hook acts in the test loop only


def test_the_training_labels_come_from_the_pseudo_mask_folder(workspace):
    """The config's train set, with the folder overridden as in the run above, reads every mask from it."""
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(str(CFG))
    cfg.merge_from_dict({'train_dataloader.dataset.data_prefix.seg_map_path': str(workspace / 'pseudo_masks')})
    cfg.train_dataloader.dataset.data_root = str(workspace / 'data/toy_voc')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    paths = [dataset.get_data_info(i)['seg_map_path'] for i in range(len(dataset))]
    assert sorted(paths) == sorted(str(workspace / 'pseudo_masks' / f'{i}.png') for i in _ids(workspace, 'train_aug'))
    from csd_mm.utils.fileio import read_png
    gt_values = set()
    for img_id in _ids(workspace, 'train_aug'):
        gt_values |= set(np.unique(read_png(str(workspace / f'data/toy_voc/SegmentationClassAug/{img_id}.png'))))
    assert 3 in gt_values  # the ground truth has cars ...
    seen = set()
    for i in range(len(dataset)):
        seen |= set(dataset[i]['data_samples'].gt_sem_seg.data.unique().tolist())
    assert 3 not in seen and {0, 255} <= seen  # ... the training labels do not: they are the pseudo masks


@pytest.mark.slow
def test_test_tool_reports_miou_and_exports_voc_pngs(workspace, trained, run_tool):
    work, _ = trained
    out = workspace / 'exported'
    log = run_tool([REPO / 'tools/test.py', CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/test',
                   '--no-save-cams', '--out', workspace / 'mmseg_out', '--cfg-options',
                   f'custom_hooks.0.out_dir={out}'], cwd=workspace)
    miou = float(re.search(r'Iter\(test\) \[4/4\].*mIoU: ([0-9.]+)', log).group(1))
    assert 0.0 < miou <= 100.0
    folder = out / 'results/VOC2012/Segmentation/comp6_val_cls'
    ids = _ids(workspace, 'val')
    assert sorted(p.stem for p in folder.glob('*.png')) == sorted(ids)
    assert not list(folder.glob('.*'))  # no temporary files left behind
    from csd_mm.utils.fileio import read_png
    for img_id in ids:
        pred = read_png(str(folder / f'{img_id}.png'))
        gt = read_png(str(workspace / f'data/toy_voc/SegmentationClassAug/{img_id}.png'))
        assert pred.dtype == np.uint8 and pred.shape == gt.shape
        assert pred.max() < NUM_CLASSES
    # the reported mIoU is the one of the written files (mmseg's IoUMetric arithmetic on the same pixels)
    from csd_mm.refine import mask_miou
    summary = mask_miou(str(folder), str(workspace / 'data/toy_voc/SegmentationClassAug'), ids,
                        num_classes=NUM_CLASSES)
    assert abs(summary['mIoU'] * 100 - miou) <= 0.005 + 1e-6  # the log rounds to 2 decimals
    # --out: mmseg's IoUMetric output_dir, <image name>.png of class ids: the same predictions
    assert sorted(p.stem for p in (workspace / 'mmseg_out').glob('*.png')) == sorted(ids)
    for img_id in ids:
        np.testing.assert_array_equal(read_png(str(workspace / 'mmseg_out' / f'{img_id}.png')),
                                      read_png(str(folder / f'{img_id}.png')))


@pytest.mark.slow
def test_test_tool_tta_and_show_dir(workspace, trained, run_tool):
    """--tta: mmseg's SegTTAModel over the config's tta_pipeline (6 scales x flip); --show-dir: every
    prediction drawn by mmseg's SegVisualizationHook; the export hook still writes every prediction."""
    work, _ = trained
    show, out, metrics = workspace / 'vis', workspace / 'tta_exported', workspace / 'tta_metrics.json'
    log = run_tool([REPO / 'tools/test.py', CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/tta',
                   '--tta', '--show-dir', show, '--out-metrics', metrics, '--cfg-options',
                   f'custom_hooks.0.out_dir={out}'], cwd=workspace)
    assert 'SegTTAModel' in log
    import json
    assert 0.0 < json.loads(metrics.read_text())['mIoU'] <= 100.0
    ids = _ids(workspace, 'val')
    drawn = sorted((show / 'vis_data/vis_image').glob('*.png'))
    assert sorted(p.name.split('.')[0].replace('test_', '', 1) for p in drawn) == sorted(ids)
    import mmcv
    assert all(mmcv.imread(str(p)).shape == (64, 128, 3) for p in drawn)  # ground truth | prediction
    from csd_mm.utils.fileio import read_png
    folder = out / 'results/VOC2012/Segmentation/comp6_val_cls'
    assert sorted(p.stem for p in folder.glob('*.png')) == sorted(ids)
    assert all(read_png(str(folder / f'{i}.png')).shape == (64, 64) for i in ids)
