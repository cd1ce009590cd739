"""tools/analysis/visualize.py on a tiny generated toy dataset with stand-in CAM files: a grid of baseline and
CSD rows, one PNG per image, the multi-label selection, and errors that name what is wrong."""
from pathlib import Path

import mmcv
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/analysis/visualize.py'


@pytest.fixture(scope='module')
def toy(tmp_path_factory, write_stand_in_cams):
    import csd_mm  # noqa: F401
    from csd_mm.datasets import make_toy_voc
    root = tmp_path_factory.mktemp('vis') / 'toy_voc'
    make_toy_voc(str(root), num_train=24, num_val=2, seed=3)  # two multi-label images in train
    write_stand_in_cams(root, root.parent / 'cams')
    return root


def _multi_label_train_ids(root: Path):
    from csd_mm.datasets import load_cls_labels
    labels = load_cls_labels(str(root / 'cls_labels.npy'))
    ids = (root / 'ImageSets/Segmentation/train.txt').read_text().split()
    return [i for i in ids if labels[i].sum() >= 2]


def test_grid_of_two_runs_on_the_first_multi_label_images(toy, run_tool_inprocess):
    out = toy.parent / 'grid.png'
    masks = toy / 'SegmentationClassAug'  # the ground truth stands in for pseudo masks
    log = run_tool_inprocess([TOOL, out, '--data-root', toy, '--num', '2', '--scale', '2',
                              '--run', 'baseline', toy.parent / 'cams', 'threshold=0.3', f'masks={masks}',
                              '--run', 'CSD', toy.parent / 'cams'])
    assert str(out) in log
    ids = _multi_label_train_ids(toy)[:2]
    assert len(ids) == 2
    grid = mmcv.imread(str(out))
    # 2 images x 2 runs, 128 px rows, 4 px gaps; widest row: image, 2 CAMs, seeds, pseudo mask, ground truth
    assert grid.shape == (4 * 128 + 3 * 4, 6 * 128, 3)
    assert (grid[128:128 + 4] == 255).all()  # the gap between two rows
    csd_row = grid[128 + 4:2 * 128 + 4]  # image, 2 CAMs, ground truth (no seeds, no masks): padded white
    assert (csd_row[:, 4 * 128:] == 255).all() and not (csd_row[:, 3 * 128:4 * 128] == 255).all()


def test_data_root_with_the_configs_npz_labels(toy, tmp_path, run_tool_inprocess):
    """A VOC root laid out as docs/data_preparation.md says (cls_labels.npz, no .npy) works with --num."""
    import shutil

    from csd_mm.datasets import load_cls_labels, save_cls_labels
    root = tmp_path / 'voc_like'
    shutil.copytree(toy, root)
    save_cls_labels(str(root / 'cls_labels.npz'), load_cls_labels(str(root / 'cls_labels.npy')))
    (root / 'cls_labels.npy').unlink()
    out = tmp_path / 'grid.png'
    run_tool_inprocess([TOOL, out, '--data-root', root, '--num', '2', '--run', 'CSD', toy.parent / 'cams'])
    assert mmcv.imread(str(out)).shape[0] == 2 * 64 + 2  # the two multi-label images, a 2 px gap


def test_one_png_per_image_into_a_folder(toy, run_tool_inprocess):
    out = toy.parent / 'per_image'
    ids = _multi_label_train_ids(toy)[:1] + ['toytr_00000']
    run_tool_inprocess([TOOL, out, '--data-root', toy, '--ids', *ids, '--run', 'CSD', toy.parent / 'cams'])
    assert sorted(p.name for p in out.glob('*.png')) == sorted(f'{i}.png' for i in ids)
    assert not list(out.glob('.*'))  # atomic writes leave no temporary file


@pytest.mark.parametrize('args, message', [
    (['--ids', 'toytr_00000', '--run', 'CSD', '{cams}', 'alpha=1'], "unknown option 'alpha=1'"),
    (['--ids', 'toytr_00000', '--run', 'CSD', '{cams}', 'threshold=x'], "threshold must be a number, got 'x'"),
    (['--ids', 'no_such_image', '--run', 'CSD', '{cams}'], 'no_such_image.npz'),  # checked up front
    (['--ids', 'toytr_00000', '--run', 'CSD', '{missing}'], 'missing does not exist'),
])
def test_errors_name_what_is_wrong(toy, run_tool_inprocess, capsys, args, message):
    args = [a.format(cams=toy.parent / 'cams', missing=toy.parent / 'missing') for a in args]
    with pytest.raises(SystemExit) as exc:
        run_tool_inprocess([TOOL, toy.parent / 'err.png', '--data-root', toy, *args])
    assert message in str(exc.value) + capsys.readouterr().err
