"""End to end, tools/run_pipeline.py on a tiny generated toy dataset with a few iterations per training: every
stage through the stock tools (baseline -> source bank -> CSD -> seeds -> CRF pseudo masks -> DeepLab -> val
mIoU), the table as JSON and Markdown, and a rerun that skips every finished stage. Real Runner, real files."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the whole pipeline, several trainings in subprocesses

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/run_pipeline.py'
ARGS = ['--iters', '4', '--seg-iters', '4', '--csd-variant', 'none', '--workers', '0',
        '--cfg-options', 'train_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=2']


def _ids(root: Path, split: str):
    return (root / f'data/toy_voc/ImageSets/Segmentation/{split}.txt').read_text().split()


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory, run_tool):
    root = tmp_path_factory.mktemp('pipeline')
    import csd_mm  # noqa: F401
    from csd_mm.datasets import make_toy_voc
    make_toy_voc(str(root / 'data/toy_voc'), num_train=24, num_val=4, seed=3)
    work = root / 'work_dirs/pipe'
    first = run_tool([TOOL, '--work-dir', work, '--data-root', 'data/toy_voc'] + ARGS, cwd=root)
    return root, work, first


def test_every_stage_writes_its_outputs(pipeline):
    root, work, log = pipeline
    result = json.loads((work / 'results.json').read_text())
    assert [r['method'] for r in result['rows']] == ['resnet', 'resnet + csd']
    assert result['num_seed_and_mask_images'] == len(_ids(root, 'train'))
    assert result['num_segmentation_images'] == len(_ids(root, 'val'))
    for run_name in ('baseline', 'csd'):
        run_dir = work / 'seed0/resnet' / run_name
        assert sorted(p.stem for p in (run_dir / 'cams').glob('*.npz')) == sorted(_ids(root, 'train_aug'))
        assert (run_dir / 'deeplab_crf/iter_4.pth').is_file()
    assert (work / 'seed0/resnet/baseline/source_bank').is_dir()
    assert 'tools/test.py' in log and 'segmentation val mIoU' in log


def test_pseudo_masks_are_the_refined_cams_of_the_images_own_classes(pipeline):
    root, work, _ = pipeline
    from csd_mm.datasets import load_cls_labels
    from csd_mm.utils.fileio import read_png
    labels = load_cls_labels(str(root / 'data/toy_voc/cls_labels.npy'))
    masks = work / 'seed0/resnet/csd/pseudo_masks_crf'
    assert sorted(p.stem for p in masks.glob('*.png')) == sorted(_ids(root, 'train_aug'))
    assert not list(masks.glob('.*'))  # no temporary file left behind
    for img_id in _ids(root, 'train_aug'):
        mask = read_png(str(masks / f'{img_id}.png'))
        assert mask.dtype == np.uint8 and mask.shape == (64, 64)
        allowed = {0} | {int(c) + 1 for c in np.flatnonzero(labels[img_id])}
        assert set(np.unique(mask).tolist()) <= allowed, img_id


def test_table_figures_are_the_ones_of_the_written_files(pipeline):
    root, work, _ = pipeline
    from csd_mm.evaluation.functional import default_thresholds
    from csd_mm.refine import mask_miou
    result = json.loads((work / 'results.json').read_text())
    for row in result['rows']:
        for key in ('seed_miou', 'single', 'multi', 'mask_miou', 'seg_miou'):
            assert 0.0 <= row[key] <= 100.0, (row['method'], key)
        assert np.isclose(default_thresholds(), row['threshold']).any()
        res = mask_miou(row['masks'], str(root / 'data/toy_voc/SegmentationClassAug'), _ids(root, 'train'), 6)
        assert row['mask_miou'] == pytest.approx(100 * res['mIoU'])
        metrics = json.loads((Path(row['seg_dir']) / 'val_metrics.json').read_text())
        assert row['seg_miou'] == pytest.approx(metrics['mIoU'])
    table = (work / 'results.md').read_text()
    assert 'segmentation mIoU (val)' in table and 'mask mIoU' in table
    assert f"| resnet + csd | 0 | {result['rows'][1]['seed_miou']:.2f} |" in table


def test_console_shows_progress_and_results_record_stage_times_and_figure(pipeline):
    """(Before the reruns below, which rewrite results.json with their own stage times.)"""
    root, work, log = pipeline
    # not a terminal: each finished phase of a child is one progress line, read from its log
    assert 'train seed0/resnet/baseline | CAM generation [####################] ' in log
    assert 'test resnet/csd/deeplab_crf | test [' in log
    result = json.loads((work / 'results.json').read_text())
    stages = result['stage_seconds']
    assert set(stages) == {'cam_training', 'seeds', 'pseudo_masks', 'segmentation_training', 'segmentation_test',
                           'figures'}
    assert all(seconds >= 0 for seconds in stages.values())
    assert set(result['stage_seconds_by_run']) == {'seed0/resnet/baseline', 'seed0/resnet/csd', '.'}
    # each figure is rounded to 0.1 s: the rounded stages may exceed the rounded wall time by half a tenth each
    assert sum(stages.values()) <= result['wall_time_s'] + 0.05 * (len(stages) + 1)
    figure = work / 'seed0/resnet/figure.png'
    assert result['figures'] == [str(figure)]
    import mmcv
    grid = mmcv.imread(str(figure))
    # 64x64 toy images enlarged 3x; a row per run (baseline, csd) for each multi-label train image
    num_multi = sum(1 for i in _ids(root, 'train') if _labels(root)[i].sum() >= 2)
    assert grid.shape[0] == 2 * min(num_multi, 4) * 192 + (2 * min(num_multi, 4) - 1) * 6


def _labels(root: Path):
    from csd_mm.datasets import load_cls_labels
    return load_cls_labels(str(root / 'data/toy_voc/cls_labels.npy'))


def test_rerun_skips_every_finished_stage(pipeline, run_tool):
    root, work, _ = pipeline
    before = json.loads((work / 'results.json').read_text())['rows']
    log = run_tool([TOOL, '--work-dir', work, '--data-root', 'data/toy_voc'] + ARGS, cwd=root)
    assert 'tools/train.py' not in log and 'tools/test.py' not in log and 'pseudo masks written' not in log
    assert 'baseline + source bank complete, skipped' in log and 'csd complete, skipped' in log
    after = json.loads((work / 'results.json').read_text())['rows']
    assert after == before


def test_an_interrupted_segmentation_stage_resumes_alone(pipeline, run_tool):
    """As after a crash between the DeepLab checkpoint and its evaluation: the rerun resumes that training from
    its last checkpoint and evaluates it; no other stage runs again."""
    root, work, _ = pipeline
    seg_dir = work / 'seed0/resnet/csd/deeplab_crf'
    before = json.loads((work / 'results.json').read_text())['rows']
    (seg_dir / 'val_metrics.json').unlink()
    (seg_dir / '.pipeline_done').unlink()
    log = run_tool([TOOL, '--work-dir', work, '--data-root', 'data/toy_voc'] + ARGS, cwd=root)
    trainings = [line for line in log.splitlines() if 'tools/train.py' in line]
    assert len(trainings) == 1 and str(seg_dir) in trainings[0] and '--resume' in trainings[0]
    assert log.count('tools/test.py') == 1 and 'pseudo masks written' not in log
    assert (seg_dir / 'val_metrics.json').is_file()
    after = json.loads((work / 'results.json').read_text())['rows']
    assert [r['seg_miou'] for r in after] == pytest.approx([r['seg_miou'] for r in before])


def _load_tool():
    spec = importlib.util.spec_from_file_location('run_pipeline', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_table_means_over_seeds():
    tool = _load_tool()
    rows = [dict(method='a', seed=0, seed_miou=10.0, single=1.0, multi=2.0, threshold=0.3, mask_miou=20.0),
            dict(method='a', seed=1, seed_miou=20.0, single=3.0, multi=4.0, threshold=0.4, mask_miou=40.0)]
    lines = tool.markdown_table(rows).splitlines()
    assert lines[0] == '| method | seed | seed mIoU | single-label | multi-label | best t | mask mIoU |'
    assert lines[2] == '| a | 0 | 10.00 | 1.00 | 2.00 | 0.30 | 20.00 |'
    # population std: mean 15, std 5; the threshold gets no mean
    assert lines[4] == '| **a** | mean ± std | 15.00 ± 5.00 | 2.00 ± 1.00 | 3.00 ± 1.00 |  | 30.00 ± 10.00 |'


def test_table_reports_the_most_cooccurring_pair(pipeline):
    root, work, _ = pipeline
    import csd_mm  # noqa: F401
    from csd_mm.datasets import load_cls_labels
    from csd_mm.evaluation.functional import top_cooccurring_pairs
    labels = load_cls_labels(str(root / 'data/toy_voc/cls_labels.npy'))
    a, b, _ = top_cooccurring_pairs(np.stack([labels[i] for i in _ids(root, 'train')]), top_k=1)[0]
    names = json.loads((root / 'data/toy_voc/meta.json').read_text())['classes']
    result = json.loads((work / 'results.json').read_text())
    for row in result['rows']:
        assert row['pair'] == f'{names[a + 1]}/{names[b + 1]}'
        assert 0 <= row['a_to_b'] <= 100 and 0 <= row['b_to_a'] <= 100
    header = (work / 'results.md').read_text().splitlines()[0]
    assert f'{names[a + 1]}->{names[b + 1]} % (seeds)' in header


def test_same_command_twice_gives_identical_figures(pipeline, run_tool):
    """Reproducibility on one machine: the CAM trainings again into another work dir (only up to the seeds, to
    stay short) give bit-identical CAM files and the same table figures as the first run, not just close ones.
    --quiet prints the table and nothing else."""
    root, work, _ = pipeline
    again = root / 'work_dirs/again'
    out = run_tool([TOOL, '--work-dir', again, '--data-root', 'data/toy_voc', '--until', 'seeds', '--quiet']
                   + ARGS, cwd=root)
    assert '[pipeline' not in out and ' | CAM generation [' not in out
    assert '| method | seed | seed mIoU |' in out
    first = json.loads((work / 'results.json').read_text())['rows']
    second = json.loads((again / 'results.json').read_text())['rows']
    paths = ('work_dir', 'masks', 'seg_dir')
    for a, b in zip(first, second):
        assert {k: v for k, v in b.items() if k not in paths} == {k: a[k] for k in b if k not in paths}
    for run_name in ('baseline', 'csd'):
        for img_id in _ids(root, 'train_aug'):
            rel = f'seed0/resnet/{run_name}/cams/{img_id}.npz'
            with np.load(work / rel) as x, np.load(again / rel) as y:
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key], err_msg=rel)


def test_iters_stretches_every_scheduler_of_the_schedule():
    tool = _load_tool()
    # the toy MCTformer's warm-up + cosine (300 iterations) keeps its shape at 100 iterations
    mct = [dict(type='LinearLR', begin=0, end=25, by_epoch=False),
           dict(type='CosineAnnealingLR', T_max=275, begin=25, end=300, by_epoch=False)]
    assert tool.stretched_schedule_options(mct, 300, 100) == [
        'train_cfg.max_iters=100', 'param_scheduler.0.begin=0', 'param_scheduler.0.end=8',
        'param_scheduler.1.begin=8', 'param_scheduler.1.end=100', 'param_scheduler.1.T_max=92']
    # the toy ResNet's single poly decay ends at the new length; every scheduler keeps at least one iteration
    assert tool.stretched_schedule_options([dict(type='PolyLR', begin=0, end=300, by_epoch=False)], 300, 4) == [
        'train_cfg.max_iters=4', 'param_scheduler.0.begin=0', 'param_scheduler.0.end=4']
    assert tool.stretched_schedule_options(mct, 300, 4)[1:] == [  # the cosine still starts after the warm-up
        'param_scheduler.0.begin=0', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
        'param_scheduler.1.end=4', 'param_scheduler.1.T_max=3']
    with pytest.raises(ValueError, match=r'param_scheduler\[0\] \(PolyLR\) is not iteration-based'):
        tool.stretched_schedule_options([dict(type='PolyLR', end=5)], 5, 2)


def test_seg_seeds_trains_only_the_extra_deeplabs_and_reports_their_mean(pipeline, run_tool):
    """--seg-seeds 2 on the finished run: only a second DeepLab per mask set trains (seed 1000, its own work dir)
    and is tested; the first is the run's existing one. A rerun after that second training crashed in one run
    resumes it alone. (Last in this file: it leaves results.json with two DeepLabs per row.)"""
    root, work, _ = pipeline
    import torch

    import csd_mm  # noqa: F401  (mmengine's checkpoint types allowed in weights_only loads)
    before = json.loads((work / 'results.json').read_text())['rows']
    args = [TOOL, '--work-dir', work, '--data-root', 'data/toy_voc', '--seg-seeds', '2'] + ARGS
    log = run_tool(args, cwd=root)
    trainings = [line for line in log.splitlines() if 'tools/train.py' in line]
    assert len(trainings) == 2 and log.count('tools/test.py') == 2 and 'pseudo masks written' not in log
    for line, run_name in zip(trainings, ('baseline', 'csd')):
        assert f'seed0/resnet/{run_name}/deeplab_crf_segseed1 ' in line and 'randomness.seed=1000 ' in line
    assert log.count('DeepLab (seed 0) complete, skipped') == 2
    rows = json.loads((work / 'results.json').read_text())['rows']
    for old, row in zip(before, rows):
        assert row['seg_seeds'] == [0, 1000] and row['seg_dir'] == old['seg_dir'] == row['seg_dirs'][0]
        second = json.loads((Path(row['seg_dirs'][1]) / 'val_metrics.json').read_text())['mIoU']
        assert row['seg_mious'] == pytest.approx([old['seg_miou'], second])
        assert row['seg_miou'] == pytest.approx((old['seg_miou'] + second) / 2)
        assert row['seg_miou_std'] == pytest.approx(abs(old['seg_miou'] - second) / 2)
        # another training seed, another network (initialisation and data order)
        first_net, second_net = (torch.load(str(Path(d) / 'iter_4.pth'), map_location='cpu', weights_only=True)[
            'state_dict'] for d in row['seg_dirs'])
        assert any(not torch.equal(first_net[k], second_net[k]) for k in first_net)
    table = (work / 'results.md').read_text()
    assert 'segmentation mIoU (val), mean ± std of 2 DeepLabs |' in table
    assert f"{rows[1]['seg_miou']:.2f} ± {rows[1]['seg_miou_std']:.2f} |" in table
    seg_dir = work / 'seed0/resnet/csd/deeplab_crf_segseed1'
    (seg_dir / 'val_metrics.json').unlink()
    (seg_dir / '.pipeline_done').unlink()
    log = run_tool(args, cwd=root)
    trainings = [line for line in log.splitlines() if 'tools/train.py' in line]
    assert len(trainings) == 1 and f'{seg_dir} ' in trainings[0] and '--resume' in trainings[0]
    assert log.count('tools/test.py') == 1
    again = json.loads((work / 'results.json').read_text())['rows']
    assert [r['seg_mious'] for r in again] == [pytest.approx(r['seg_mious']) for r in rows]
