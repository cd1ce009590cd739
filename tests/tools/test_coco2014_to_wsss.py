"""tools/dataset_converters/coco2014_to_wsss.py as a user runs it: --toy generates the COCO-format toy in ROOT and
converts it with pycocotools, printing the counts; a bad json is a clear error, and so is a missing pycocotools
(named with its install command)."""
import importlib.util
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/dataset_converters/coco2014_to_wsss.py'


def test_toy_conversion_prints_the_counts_and_writes_the_layout(tmp_path, run_tool_inprocess):
    root = tmp_path / 'coco'
    out = run_tool_inprocess([TOOL, root, '--toy'])
    assert 'train2014: 200 images, 192 with at least one label (8 without: left out of ' \
           'ImageSets/train2014_cls.txt); 80 classes; 200 masks written' in out
    assert 'val2014: 60 images, 58 with at least one label' in out
    assert len((root / 'ImageSets/train2014_cls.txt').read_text().split()) == 192
    assert len(list((root / 'SegmentationClass/val2014').glob('*.png'))) == 60
    assert (root / 'cls_labels.npz').is_file()
    again = run_tool_inprocess([TOOL, root])  # a rerun keeps the masks
    assert '0 masks written' in again


def _load_tool():
    spec = importlib.util.spec_from_file_location('coco2014_to_wsss', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_bad_annotation_file_is_a_clear_error(tmp_path, capsys):
    tool = _load_tool()
    bad = tmp_path / 'instances_train2014.json'
    bad.write_text('{"images": []}')
    assert tool.main([str(tmp_path), '--ann-files', f'train2014={bad}']) == 1
    assert f'{bad} is not a COCO instances file: no annotations, categories' in capsys.readouterr().err
    assert tool.main([str(tmp_path), '--ann-files', 'train2014']) == 2  # not SPLIT=JSON


def test_missing_pycocotools_is_a_clear_error(tmp_path, capsys, monkeypatch):
    tool = _load_tool()
    monkeypatch.setitem(sys.modules, 'pycocotools', None)  # what `import pycocotools` meets when not installed
    assert tool.main([str(tmp_path / 'coco'), '--toy']) == 1
    err = capsys.readouterr().err
    assert 'error: the COCO path decodes masks with pycocotools, which is not installed: ' \
           'pip install -r requirements/optional/coco.txt' in err
    assert not (tmp_path / 'coco' / 'SegmentationClass').exists()
