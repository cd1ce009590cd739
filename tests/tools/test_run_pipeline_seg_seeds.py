"""tools/run_pipeline.py --seg-seeds: the training-seed and work-dir rule of the extra DeepLabs of a mask set, the
mean / std of their val mIoUs and how the table shows them (pure functions, hand-computed numbers). The end to end
case (two DeepLabs per mask set, reruns that skip and resume them) is in test_run_pipeline.py."""
import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / 'tools/run_pipeline.py'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('run_pipeline', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_deeplab_keeps_the_cam_seed_and_dir_the_others_get_their_own(tool):
    # the first one is the DeepLab of the runs made before --seg-seeds: same seed, same work dir
    assert tool.segmentation_seed(0, 0) == 0 and tool.segmentation_seed(2, 0) == 2
    assert tool.segmentation_dir_name('crf', 0) == 'deeplab_crf'
    assert [tool.segmentation_seed(2, k) for k in range(3)] == [2, 1002, 2002]
    assert [tool.segmentation_dir_name('irn', k) for k in range(3)] == [
        'deeplab_irn', 'deeplab_irn_segseed1', 'deeplab_irn_segseed2']
    # distinct over every CAM seed of a --seeds 0 1 2 table with 3 DeepLabs each (s + k would reuse seeds 1, 2)
    seeds = [tool.segmentation_seed(s, k) for s in range(3) for k in range(3)]
    assert len(set(seeds)) == 9


def test_aggregate_is_the_mean_and_population_std_of_the_deeplabs(tool):
    # 24 and 39 (the toy DeepLab's two modes): mean 31.5, population std 7.5
    assert tool.aggregate_segmentation([24.0, 39.0]) == dict(seg_miou=31.5, seg_miou_std=7.5,
                                                             seg_mious=[24.0, 39.0])
    # one DeepLab: its own figure, as results.json's seg_miou before --seg-seeds
    assert tool.aggregate_segmentation([38.62]) == dict(seg_miou=38.62, seg_miou_std=0.0, seg_mious=[38.62])
    # 10, 20, 30: mean 20, std sqrt(200 / 3) = 8.165
    agg = tool.aggregate_segmentation([10, 20, 30])
    assert agg['seg_miou'] == 20.0 and agg['seg_miou_std'] == pytest.approx(8.16497, abs=1e-5)
    with pytest.raises(ValueError, match='no DeepLab'):
        tool.aggregate_segmentation([])


def _row(tool, method, seed, mious):
    return dict(method=method, seed=seed, seed_miou=40.0 + seed, mask_miou=50.0, **tool.aggregate_segmentation(mious))


def test_table_shows_each_runs_deeplab_spread_and_says_what_each_std_is_over(tool):
    rows = [_row(tool, 'a', 0, [24.0, 39.0]), _row(tool, 'a', 1, [30.0, 40.0])]
    lines = tool.markdown_table(rows).splitlines()
    assert lines[0] == '| method | seed | seed mIoU | mask mIoU | segmentation mIoU (val), mean ± std of 2 DeepLabs |'
    assert lines[2] == '| a | 0 | 40.00 | 50.00 | 31.50 ± 7.50 |'
    assert lines[3] == '| a | 1 | 41.00 | 50.00 | 35.00 ± 5.00 |'
    # over the CAM seeds, of the per-run means 31.5 and 35: mean 33.25, std 1.75
    assert lines[4] == '| **a** | mean ± std | 40.50 ± 0.50 | 50.00 ± 0.00 | 33.25 ± 1.75 |'
    notes = [line for line in lines[5:] if line]
    assert len(notes) == 2
    assert 'over its 2 DeepLabs' in notes[0] and 's + 1000 k' in notes[0]
    assert 'over the seeds of the CAM runs' in notes[1] and "of each run's DeepLab mean" in notes[1]


def test_table_of_one_deeplab_per_mask_set_is_unchanged(tool):
    rows = [_row(tool, 'a', 0, [38.62])]
    assert tool.markdown_table(rows).splitlines() == [
        '| method | seed | seed mIoU | mask mIoU | segmentation mIoU (val) |', '|---|---|---|---|---|',
        '| a | 0 | 40.00 | 50.00 | 38.62 |']


def test_seg_seeds_below_one_is_refused(tool, capsys):
    assert tool.parse_args([]).seg_seeds == 1
    assert tool.parse_args(['--seg-seeds', '3']).seg_seeds == 3
    with pytest.raises(SystemExit):
        tool.parse_args(['--seg-seeds', '0'])
    assert '--seg-seeds 0: train at least one DeepLab per mask set' in capsys.readouterr().err
