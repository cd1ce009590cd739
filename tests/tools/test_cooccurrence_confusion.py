"""Tests of tools/analysis/cooccurrence_confusion.py end to end on a tiny toy VOC folder (CAM and PNG inputs)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from csd_mm.datasets import load_cls_labels, make_toy_voc, read_split
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import read_png, write_png

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'analysis' / 'cooccurrence_confusion.py'
HORSE, RIDER = 1, 2  # mask values of the toy's horse and rider


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """A 24-image toy set; the train split (12 images) has 4 horse + rider images, the only co-occurring pair.

    Stand-in predictions with a known confusion on the images holding both: CAMs whose rider map covers the
    horse (seeds: horse -> rider on every horse pixel) and masks that call every rider pixel horse.
    """
    base = tmp_path_factory.mktemp('cooc')
    root = base / 'data'
    make_toy_voc(str(root), num_train=24, num_val=2, seed=0)
    ids = read_split(str(root / 'ImageSets/Segmentation/train.txt'))
    labels = load_cls_labels(str(root / 'cls_labels.npy'))
    cam_dir, png_dir = base / 'cams', base / 'masks'
    png_dir.mkdir()
    pair_ids = []
    for img_id in ids:
        gt = read_png(str(root / 'SegmentationClassAug' / f'{img_id}.png'))
        keys = np.flatnonzero(labels[img_id])
        both = labels[img_id][HORSE - 1] > 0 and labels[img_id][RIDER - 1] > 0
        cam = np.stack([(gt == k + 1) * 0.8 for k in keys]).astype(np.float32)
        pred = gt.copy()
        if both:
            pair_ids.append(img_id)
            cam[list(keys).index(RIDER - 1)][gt == HORSE] = 0.9
            pred[gt == RIDER] = HORSE
        save_cam(cam_path(str(cam_dir), img_id), cam, keys)
        write_png(str(png_dir / f'{img_id}.png'), pred)
    assert len(pair_ids) == 4
    return dict(root=root, ids=ids, cam_dir=cam_dir, png_dir=png_dir, base=base)


def _row(printed, first_cell):
    """The cells of the printed table row whose first cell is ``first_cell``."""
    for line in printed.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells[0] == first_cell:
            return cells[1:]
    raise AssertionError(f'no table row {first_cell!r} in:\n{printed}')


def _args(toy, pred_dir, *extra):
    root = toy['root']
    return [TOOL, pred_dir, root / 'SegmentationClassAug', '--split', root / 'ImageSets/Segmentation/train.txt',
            '--labels', root / 'cls_labels.npy', *extra]


@pytest.mark.slow
def test_cam_folder_in_a_subprocess_with_json(toy, run_tool):
    out = toy['base'] / 'cam_report.json'
    printed = run_tool(_args(toy, toy['cam_dir'], '--threshold', '0.5', '--top-k', '3', '--meta',
                             toy['root'] / 'meta.json', '--out', out), ROOT)
    assert '12 images (CAM seeds at t=0.50): 8 single-label, 4 multi-label' in printed
    assert _row(printed, 'horse / rider') == ['100.00', '0.00', '4']  # horse pixels seeded as rider
    assert 'report written to' in printed and '12/12' in printed  # mmengine's progress bar (stderr)
    data = json.loads(out.read_text())
    assert data['input'] == 'cam' and data['threshold'] == 0.5 and data['num_images'] == 12
    assert data['pairs'] == [dict(a='horse', b='rider', a_index=0, b_index=1, images=4, a_to_b=100.0,
                                  b_to_a=0.0)]  # the only pair that co-occurs, even with --top-k 3
    # single-label images: the seeds are the ground truth
    assert all(v in (100.0, None) for v in data['per_class_iou']['single'].values())
    assert data['per_class_iou']['multi']['horse'] == 0.0
    assert data['classes'][:3] == ['background', 'horse', 'rider']


def test_png_folder_and_cams_without_threshold(toy, run_tool_inprocess):
    printed = run_tool_inprocess(_args(toy, toy['png_dir'], '--class-names', 'horse', 'rider', 'car', 'boat',
                                       'bird', '--no-progress'))
    assert '12 images (masks)' in printed
    assert _row(printed, 'horse / rider') == ['0.00', '100.00', '4']  # rider pixels called horse
    assert _row(printed, 'background') == ['100.00', '100.00']  # foreground names alone: background prepended
    assert _row(printed, 'rider') == ['n/a', '0.00'] and _row(printed, 'car') == ['100.00', 'n/a']
    printed = run_tool_inprocess(_args(toy, toy['cam_dir'], '--no-progress'))
    assert 'no --threshold: the best background score of the seed sweep, t=0.00' in printed
    assert _row(printed, '1 / 2') == ['100.00', '0.00', '4']  # no names: mask values


def test_errors_name_the_files(toy, run_tool_inprocess, tmp_path):
    ids = toy['ids']
    # an id of the split missing from the folder
    cams = tmp_path / 'cams'
    shutil.copytree(toy['cam_dir'], cams)
    (cams / f'{ids[3]}.npz').unlink()
    with pytest.raises(SystemExit, match=f'1 of 12 ids of the split have no CAM file in .*{ids[3]}.npz'):
        run_tool_inprocess(_args(toy, cams, '--threshold', '0.5', '--no-progress'))
    # another dataset's CAM: keys beyond the labels' 5 classes
    save_cam(cam_path(str(cams), ids[3]), np.zeros((1, 64, 64), np.float32), [9])
    with pytest.raises(SystemExit, match=rf'{ids[3]}.npz has class ids \[9\] but the dataset has 5 foreground'):
        run_tool_inprocess(_args(toy, cams, '--threshold', '0.5', '--no-progress'))
    # a CAM of the dataset's classes but not of its image's label (CAM files hold exactly the label's classes)
    label = load_cls_labels(str(toy['root'] / 'cls_labels.npy'))[ids[3]]
    absent = int(np.flatnonzero(label == 0)[0])
    save_cam(cam_path(str(cams), ids[3]), np.zeros((1, 64, 64), np.float32), [absent])
    with pytest.raises(SystemExit, match=rf"{ids[3]}.npz has class ids \[{absent}\] but by the labels '{ids[3]}' "
                                         r'has the classes \['):
        run_tool_inprocess(_args(toy, cams, '--threshold', '0.5', '--no-progress'))
    # another dataset's mask: values beyond 0..5 and 255
    masks = tmp_path / 'masks'
    shutil.copytree(toy['png_dir'], masks)
    write_png(str(masks / f'{ids[0]}.png'), np.full((64, 64), 20, np.uint8))
    with pytest.raises(SystemExit, match=rf'mask .*{ids[0]}.png holds values \[20\] outside 0..5'):
        run_tool_inprocess(_args(toy, masks, '--no-progress'))
    # a mask of another size than its ground truth, then a ground truth missing
    write_png(str(masks / f'{ids[0]}.png'), np.zeros((32, 32), np.uint8))
    with pytest.raises(SystemExit, match=rf'ground truth .*{ids[0]}.png has size \(64, 64\) but .*masks/'
                       rf'{ids[0]}.png has size \(32, 32\)'):
        run_tool_inprocess(_args(toy, masks, '--no-progress'))
    gt = tmp_path / 'gt'
    shutil.copytree(toy['root'] / 'SegmentationClassAug', gt)
    (gt / f'{ids[5]}.png').unlink()
    args = _args(toy, toy['png_dir'], '--no-progress')
    args[2] = gt
    with pytest.raises(SystemExit, match=rf'1 of 12 ids of the split have no ground truth in .*gt: .*{ids[5]}.png'):
        run_tool_inprocess(args)
    # a threshold for masks, class names of another count, a folder of both kinds
    with pytest.raises(SystemExit, match='a threshold applies to CAM files only'):
        run_tool_inprocess(_args(toy, toy['png_dir'], '--threshold', '0.5', '--no-progress'))
    with pytest.raises(SystemExit, match='3 class names given but the labels have 5 foreground classes'):
        run_tool_inprocess(_args(toy, toy['png_dir'], '--class-names', 'a', 'b', 'c', '--no-progress'))
    # VOC's 21 names for the toy's 5 classes; a --meta that is neither a file nor a dataset type
    with pytest.raises(SystemExit, match='21 class names given but the labels have 5 foreground classes'):
        run_tool_inprocess(_args(toy, toy['png_dir'], '--meta', 'PascalVOCDataset', '--no-progress'))
    with pytest.raises(SystemExit, match='--meta nowhere.json: neither a file nor a registered dataset type'):
        run_tool_inprocess(_args(toy, toy['png_dir'], '--meta', 'nowhere.json', '--no-progress'))
    write_png(str(cams / f'{ids[0]}.png'), np.zeros((64, 64), np.uint8))
    with pytest.raises(SystemExit, match='holds both CAM files'):
        run_tool_inprocess(_args(toy, cams, '--no-progress'))
