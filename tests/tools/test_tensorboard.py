"""``tools/train.py --tensorboard`` (and run_pipeline's): mmengine's TensorboardVisBackend beside the local one;
a clear error when the optional tensorboard package is missing; event files from a real training when present."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

import csd_mm  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CAM_CFG = REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py'
HAS_TENSORBOARD = (importlib.util.find_spec('tensorboard') is not None
                   or importlib.util.find_spec('tensorboardX') is not None)


@pytest.fixture(scope='module')
def train_tool():
    spec = importlib.util.spec_from_file_location('csd_tool_train_tb', REPO / 'tools/train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_tensorboard_backend_is_added_beside_the_local_one(train_tool, monkeypatch):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: object())  # as if tensorboard were installed
    cfg = Config.fromfile(str(CAM_CFG))
    train_tool.enable_tensorboard(cfg)
    train_tool.enable_tensorboard(cfg)  # idempotent
    types = [train_tool._type_name(b['type']) for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']


def test_missing_tensorboard_is_a_clear_error(train_tool, monkeypatch):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ValueError, match='needs the tensorboard package .* pip install tensorboard'):
        train_tool.enable_tensorboard(Config.fromfile(str(CAM_CFG)))


def test_train_refuses_tensorboard_before_training_when_it_is_missing(tmp_path, run_tool_inprocess, monkeypatch):
    # a None entry in sys.modules is Python's own "not installed": find_spec returns None and imports fail
    # (the test environment has tensorboard, users of csd_mm may not)
    monkeypatch.setitem(sys.modules, 'tensorboard', None)
    monkeypatch.setitem(sys.modules, 'tensorboardX', None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='error: --tensorboard needs the tensorboard package'):
        run_tool_inprocess([REPO / 'tools/train.py', CAM_CFG, '--work-dir', tmp_path / 'work', '--tensorboard'])
    assert not (tmp_path / 'work').exists()  # nothing ran


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TENSORBOARD, reason='the optional tensorboard package is not installed '
                    '(pip install tensorboard); --tensorboard then stops with an error instead')
def test_training_with_tensorboard_writes_event_files(tmp_path, run_tool):
    from csd_mm.datasets import make_toy_voc
    make_toy_voc(str(tmp_path / 'data/toy_voc'), num_train=8, num_val=2, seed=3)
    run_tool([REPO / 'tools/train.py', CAM_CFG, '--work-dir', 'work', '--tensorboard', '--cfg-options',
              'train_cfg.max_iters=2', 'param_scheduler.0.end=2', 'train_dataloader.batch_size=4',
              'default_hooks.logger.interval=1', 'custom_hooks=[]'], cwd=tmp_path)
    events = list((tmp_path / 'work').glob('*/vis_data/events.out.tfevents.*'))
    local = list((tmp_path / 'work').glob('*/vis_data/scalars.json'))  # the local backend stays
    assert len(events) == 1 and len(local) == 1
    # the event file holds what the LoggerHook logged: the same loss at iterations 1 and 2 as scalars.json
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    logged = [json.loads(line) for line in local[0].read_text().splitlines()]
    assert [(e.step, e.value) for e in accumulator.Scalars('loss')] == \
        [(r['step'], pytest.approx(r['loss'], rel=1e-6)) for r in logged]
    assert [r['step'] for r in logged] == [1, 2]


def test_pipeline_passes_tensorboard_to_every_training_and_refuses_it_without_the_package(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location('csd_tool_run_pipeline_tb', REPO / 'tools/run_pipeline.py')
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name.startswith('tensorboard') else find_spec(name, *a))
    with pytest.raises(SystemExit):
        pipeline.parse_args(['--tensorboard'])
    assert '--tensorboard needs the tensorboard package' in capsys.readouterr().err
    assert not pipeline.parse_args([]).tensorboard
