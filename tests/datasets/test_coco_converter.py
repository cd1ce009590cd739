"""Tests for csd_mm/datasets/coco_converter.py and toy_coco.py: the generated COCO-format toy (polygons, RLE,
compressed RLE, crowd regions, images without objects) converted into labels, masks and split files."""
import json
import sys

import numpy as np
import pytest

from csd_mm.datasets import load_cls_labels, read_split
from csd_mm.datasets.coco_converter import convert_coco, load_coco_instances
from csd_mm.datasets.labels import LabelFileError, save_cls_labels
from csd_mm.datasets.toy import render_toy_image
from csd_mm.datasets.toy_coco import make_toy_coco
from csd_mm.utils.fileio import read_png


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco')
    info = make_toy_coco(str(root), num_train=30, num_val=10)
    summary = convert_coco(info['ann_files'], str(root), progress=False, log=None)
    return root, info, summary


def test_split_files_leave_out_images_without_labels(toy_coco):
    root, info, summary = toy_coco
    assert summary['train2014'] == dict(num_images=30, num_labelled=29, masks_written=30)  # image 24: no object
    assert summary['val2014']['num_images'] == 10 and summary['val2014']['num_labelled'] == 10
    all_ids = read_split(str(root / 'ImageSets/train2014.txt'))
    cls_ids = read_split(str(root / 'ImageSets/train2014_cls.txt'))
    assert len(all_ids) == 30 and all_ids[0] == 'COCO_train2014_000000100000'
    assert set(all_ids) - set(cls_ids) == {'COCO_train2014_000000100024'}
    labels = load_cls_labels(str(root / 'cls_labels.npz'))
    assert len(labels) == 40 and all(v.shape == (80, ) for v in labels.values())
    assert labels['COCO_train2014_000000100024'].sum() == 0


def test_masks_match_the_rendered_scenes(toy_coco):
    root, _, _ = toy_coco
    labels = load_cls_labels(str(root / 'cls_labels.npz'))
    toy_to_coco = np.array([0, 18, 1, 3, 9, 15])  # toy mask value -> COCO mask value (horse 18, person 1, ...)
    crowd_images = 0
    for index in range(30):
        if index == 24:
            continue
        img_id = f'COCO_train2014_{100000 + index:012d}'
        rng = np.random.default_rng([0, 0, index, 64])
        _, toy_label, _ = render_toy_image(rng, size=64, ignore_border=False)
        mask = read_png(str(root / 'SegmentationClass/train2014' / f'{img_id}.png'))
        expected = toy_to_coco[toy_label]
        known = mask != 255
        crowd_images += int((~known).any())
        assert (~known).any() == (index % 10 == 9)  # exactly the images with a crowd region
        # polygons (contours through boundary pixels' indices) lose right / bottom boundary pixels in COCO's rule
        assert (mask[known] == expected[known]).mean() > 0.97
        present = sorted(set(np.unique(expected).tolist()) - {0})
        assert np.flatnonzero(labels[img_id]).tolist() == [v - 1 for v in present]
    assert crowd_images == 3  # images 9, 19, 29


def test_rerun_keeps_masks_and_is_reproducible(toy_coco, tmp_path):
    root, info, _ = toy_coco
    again = convert_coco(info['ann_files'], str(root), progress=False, log=None)
    assert again['train2014']['masks_written'] == 0
    assert make_toy_coco(str(root), num_train=30, num_val=10)['skipped']
    with pytest.raises(ValueError, match='made with'):
        make_toy_coco(str(root), num_train=31, num_val=10)


def test_without_pycocotools_masks_are_refused_up_front_and_labels_still_convert(toy_coco, tmp_path, monkeypatch):
    _, info, _ = toy_coco
    monkeypatch.setitem(sys.modules, 'pycocotools', None)  # what `import pycocotools` meets when not installed
    out = tmp_path / 'no_pycocotools'
    with pytest.raises(ImportError, match='pycocotools, which is not installed: pip install -r '
                                          'requirements/optional/coco.txt'):
        convert_coco(info['ann_files'], str(out), progress=False, log=None)
    assert not out.exists()  # refused before anything was written
    convert_coco(info['ann_files'], str(out), masks=False, progress=False, log=None)  # labels need no decoder
    assert len(load_cls_labels(str(out / 'cls_labels.npz'))) == 40


def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def test_malformed_json_errors_name_the_file(tmp_path):
    with pytest.raises(LabelFileError, match='not found'):
        load_coco_instances(str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{')
    with pytest.raises(LabelFileError, match='bad.json is not valid JSON'):
        load_coco_instances(str(bad))
    with pytest.raises(LabelFileError, match='x.json is not a COCO instances file: no annotations'):
        load_coco_instances(_write(tmp_path / 'x.json', dict(images=[], categories=[dict(id=1)])))
    base = dict(images=[dict(id=1, file_name='a.jpg', height=2, width=2)], categories=[dict(id=1)])
    with pytest.raises(LabelFileError, match='y.json: annotation 7 names unknown image 2'):
        load_coco_instances(_write(tmp_path / 'y.json', dict(base, annotations=[
            dict(id=7, image_id=2, category_id=1, segmentation=[])])))
    with pytest.raises(LabelFileError, match='z.json: annotation 7 names unknown category 3'):
        load_coco_instances(_write(tmp_path / 'z.json', dict(base, annotations=[
            dict(id=7, image_id=1, category_id=3, segmentation=[])])))
    with pytest.raises(LabelFileError, match="w.json: two images have the file stem 'a'"):
        load_coco_instances(_write(tmp_path / 'w.json', dict(base, annotations=[], images=base['images'] * 2)))
    rle_json = _write(tmp_path / 'v.json', dict(base, annotations=[
        dict(id=7, image_id=1, category_id=1, iscrowd=1, segmentation=dict(size=[2, 2], counts=[1, 1]))]))
    with pytest.raises(LabelFileError, match=r'v.json: a.png: RLE run lengths sum to 2'):
        convert_coco(dict(train2014=rle_json), str(tmp_path / 'out'), progress=False, log=None)


def test_splits_converted_in_separate_runs_keep_each_others_labels(toy_coco, tmp_path):
    root, info, _ = toy_coco
    out = tmp_path / 'one_at_a_time'
    for split in ('train2014', 'val2014'):  # --ann-files SPLIT=JSON, one run per split
        convert_coco({split: info['ann_files'][split]}, str(out), masks=False, progress=False, log=None)
    together = load_cls_labels(str(root / 'cls_labels.npz'))
    separate = load_cls_labels(str(out / 'cls_labels.npz'))
    assert sorted(separate) == sorted(together) and len(separate) == 40
    assert all(np.array_equal(separate[k], together[k]) for k in together)
    # a label file of another dataset in the folder is an error, not a silent mix
    save_cls_labels(str(out / 'cls_labels.npz'), {'other_image': np.ones(5, np.float32)})
    with pytest.raises(LabelFileError, match='holds labels of 5 classes'):
        convert_coco({'val2014': info['ann_files']['val2014']}, str(out), masks=False, progress=False, log=None)
