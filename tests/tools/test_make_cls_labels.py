"""Tests for tools/dataset_converters/make_cls_labels.py and make_toy_voc.py."""
import importlib.util
from pathlib import Path

from csd_mm.datasets.labels import load_cls_labels

REPO = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / 'tools' / 'dataset_converters' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toy_then_labels_from_xml_and_masks(tmp_path, capsys, monkeypatch):
    root = tmp_path / 'toy'
    toy = _load('make_toy_voc')
    args = [str(root), '--num-train', '10', '--num-val', '3', '--size', '40']
    assert toy.main(args) == 0
    assert 'written' in capsys.readouterr().out
    assert toy.main(args) == 0
    assert 'skipped' in capsys.readouterr().out
    assert toy.main(args[:-1] + ['48']) == 1  # other parameters on the same root
    assert 'error' in capsys.readouterr().err

    reference = load_cls_labels(root / 'cls_labels.npy')
    tool = _load('make_cls_labels')
    splits = ['--splits', 'ImageSets/Segmentation/train_aug.txt', 'ImageSets/Segmentation/val.txt']
    assert tool.main([str(root), *splits, '--out', 'from_xml.npy']) == 0  # classes from meta.json
    assert tool.main([str(root), *splits, '--source', 'mask', '--out', str(tmp_path / 'from_mask.npy')]) == 0
    for made in (load_cls_labels(root / 'from_xml.npy'), load_cls_labels(tmp_path / 'from_mask.npy')):
        assert sorted(made) == sorted(reference)
        assert all(made[k].tolist() == reference[k].tolist() for k in reference)
    assert tool.main([str(root), *splits, '--classes', 'horse', 'car']) == 1
    assert 'is not one of' in capsys.readouterr().err
    # the split paths as a shell completes them from the working directory (ROOT/ImageSets/...) work too
    as_typed = ['--splits', str(root / 'ImageSets/Segmentation/train_aug.txt'),
                str(root.relative_to(tmp_path) / 'ImageSets/Segmentation/val.txt')]
    monkeypatch.chdir(tmp_path)
    assert tool.main([str(root), *as_typed, '--out', 'typed.npz']) == 0
    typed = load_cls_labels(root / 'typed.npz')
    assert sorted(typed) == sorted(reference) and all(typed[k].tolist() == reference[k].tolist() for k in typed)
