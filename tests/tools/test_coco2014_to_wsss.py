"""tools/dataset_converters/coco2014_to_wsss.py as a user runs it: --toy generates the COCO-format toy in ROOT and
converts it (csd_mm's own decoders: pycocotools is optional), printing the counts; a bad json is a clear error;
with pycocotools installed it is the default decoder and gives the same masks."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/dataset_converters/coco2014_to_wsss.py'


def test_toy_conversion_prints_the_counts_and_writes_the_layout(tmp_path, run_tool_inprocess):
    root = tmp_path / 'coco'
    out = run_tool_inprocess([TOOL, root, '--toy', '--no-pycocotools'])
    assert 'decoding masks with csd_mm fallback' in out
    assert 'train2014: 200 images, 192 with at least one label (8 without: left out of ' \
           'ImageSets/train2014_cls.txt); 80 classes; 200 masks written' in out
    assert 'val2014: 60 images, 58 with at least one label' in out
    assert len((root / 'ImageSets/train2014_cls.txt').read_text().split()) == 192
    assert len(list((root / 'SegmentationClass/val2014').glob('*.png'))) == 60
    assert (root / 'cls_labels.npz').is_file()
    again = run_tool_inprocess([TOOL, root, '--no-pycocotools'])  # a rerun keeps the masks
    assert '0 masks written' in again


def test_bad_annotation_file_is_a_clear_error(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('coco2014_to_wsss', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    bad = tmp_path / 'instances_train2014.json'
    bad.write_text('{"images": []}')
    assert tool.main([str(tmp_path), '--ann-files', f'train2014={bad}']) == 1
    assert f'{bad} is not a COCO instances file: no annotations, categories' in capsys.readouterr().err
    assert tool.main([str(tmp_path), '--ann-files', 'train2014']) == 2  # not SPLIT=JSON


def test_default_decoder_is_pycocotools_when_installed_with_the_same_masks(tmp_path, run_tool_inprocess):
    pytest.importorskip('pycocotools')
    from csd_mm.utils.fileio import read_png
    fallback, reference = tmp_path / 'fallback', tmp_path / 'reference'
    run_tool_inprocess([TOOL, fallback, '--toy', '--no-pycocotools'])
    out = run_tool_inprocess([TOOL, reference, '--toy'])
    assert 'decoding masks with pycocotools' in out
    masks = sorted(p.relative_to(reference) for p in reference.glob('SegmentationClass/*/*.png'))
    assert len(masks) == 260
    for name in masks:
        assert (read_png(str(reference / name)) == read_png(str(fallback / name))).all(), name
