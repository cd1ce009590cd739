"""The stock-tool options of mmseg 1.2.2 on this repo's configs, without a Runner: ``tools/train.py --amp``
(configs with the OptimWrapper class or its name as type) and which of ``tools/test.py``'s ``--out``,
``--show-dir``, ``--tta``, ``--cam-dir``, ``--no-save-cams`` each kind of config takes, with the errors for the
others. The end-to-end runs of these options are in test_train_test_e2e.py, test_mctformer_e2e.py and
test_segmentation_e2e.py."""
import argparse
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper

import csd_mm  # noqa: F401  (mmcv-lite fallbacks before mmseg; registers every part)

REPO = Path(__file__).resolve().parents[2]
CAM_CFG = REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py'
CSD_CFG = REPO / 'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'
MCT_CFG = REPO / 'configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py'
SEG_CFG = REPO / 'configs/toy/deeplabv3plus_r18_1xb8_1300it_toy_64x64.py'
AFF_CFG = REPO / 'configs/toy/aff_resnet18_1xb8_200it_toy_64x64.py'


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'csd_tool_{name}', REPO / 'tools' / f'{name}.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture(scope='module')
def train_tool():
    return _load_tool('train')


@pytest.fixture(scope='module')
def test_tool():
    return _load_tool('test')


# ---- tools/train.py --amp


def test_amp_replaces_the_optim_wrapper_class_by_the_amp_class(train_tool):
    cfg = Config.fromfile(str(CAM_CFG))
    assert cfg.optim_wrapper.type is OptimWrapper  # Python-style config: the class
    optimizer = dict(cfg.optim_wrapper.optimizer)
    train_tool.enable_amp(cfg, str(CAM_CFG))
    assert cfg.optim_wrapper.type is AmpOptimWrapper and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert dict(cfg.optim_wrapper.optimizer) == optimizer  # nothing else changes
    assert "type='mmengine.optim.AmpOptimWrapper'" in cfg.pretty_text  # the Runner logs this dump


@pytest.mark.parametrize('wrapper', [dict(type='OptimWrapper'), dict(type='mmengine.OptimWrapper'), dict()])
def test_amp_replaces_a_registry_name_by_a_name(train_tool, wrapper):
    cfg = Config(dict(optim_wrapper=dict(wrapper, optimizer=dict(type='SGD', lr=0.1))))
    train_tool.enable_amp(cfg, 'my_config.py')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'


@pytest.mark.parametrize('amp_type', [AmpOptimWrapper, 'AmpOptimWrapper'])
def test_amp_leaves_an_amp_wrapper_as_it_is(train_tool, amp_type):
    cfg = Config(dict(optim_wrapper=dict(type=amp_type, loss_scale=512.0)))
    train_tool.enable_amp(cfg, 'my_config.py')
    assert cfg.optim_wrapper.type == amp_type and cfg.optim_wrapper.loss_scale == 512.0


class _OtherWrapper(OptimWrapper):
    pass


@pytest.mark.parametrize('wrapper_type', [_OtherWrapper, 'OptimWrapperDict'])
def test_amp_refuses_other_wrappers_naming_the_config_and_the_type(train_tool, wrapper_type):
    cfg = Config(dict(optim_wrapper=dict(type=wrapper_type)))
    with pytest.raises(ValueError, match=r'--amp: my_config.py sets optim_wrapper.type=(_OtherWrapper|'
                                         r'OptimWrapperDict); --amp only replaces OptimWrapper'):
        train_tool.enable_amp(cfg, 'my_config.py')
    with pytest.raises(ValueError, match='my_config.py has no optim_wrapper'):
        train_tool.enable_amp(Config(dict(model=dict())), 'my_config.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='AMP works on this machine')
def test_amp_on_cpu_stops_with_a_clear_error(run_tool_inprocess, tmp_path):
    """On CPU the tool stops before building anything (mmengine's AmpOptimWrapper would fail an assertion)."""
    with pytest.raises(SystemExit, match=r"error: --amp needs a GPU: mmengine's AmpOptimWrapper .* runs on CUDA, "
                                         r'NPU, MLU or MUSA devices only'):
        run_tool_inprocess([REPO / 'tools/train.py', CAM_CFG, '--amp', '--work-dir', tmp_path / 'work'])
    assert not (tmp_path / 'work').exists()


# ---- tools/test.py: which options each kind of config takes


@pytest.mark.parametrize('config,kind', [(CAM_CFG, 'cam'), (CSD_CFG, 'cam'), (MCT_CFG, 'cam'), (SEG_CFG, 'segmentor'),
                                         (AFF_CFG, 'other')])
def test_model_kind(test_tool, config, kind):
    assert test_tool.model_kind(Config.fromfile(str(config))) == kind


def test_model_kind_of_registry_names(test_tool):
    assert test_tool.model_kind(Config(dict(model=dict(type='CAMClassifier')))) == 'cam'
    assert test_tool.model_kind(Config(dict(model=dict(type='EncoderDecoder')))) == 'segmentor'


@pytest.mark.parametrize('config,options,message', [
    (CAM_CFG, ['--tta'], r'--tta: .*cam_resnet18_1xb16_300it_toy_64x64.py is a CAM classifier config; its CAMs '
     r'already aggregate the scales and flips of model.test_cfg'),
    (CAM_CFG, ['--out', 'a', '--cam-dir', 'b'], r'--out a and --cam-dir b: for a CAM config both name the CAM '
     r'folder; give one of them'),
    (CAM_CFG, ['--show-dir', 'vis', '--no-save-cams'], r'--show-dir with --no-save-cams: --show-dir needs the CAM '
     r'files'),
    (MCT_CFG, ['--out', 'cams', '--no-save-cams'], r'--out with --no-save-cams'),
    (SEG_CFG, ['--cam-dir', 'cams'], r'--cam-dir: .*deeplabv3plus_r18_1xb8_1300it_toy_64x64.py is not a CAM '
     r'classifier config and writes no CAMs'),
    (SEG_CFG, ['--tta', '--cfg-options', 'tta_pipeline=None'], r'--tta: .*deeplabv3plus_r18_1xb8_1300it_toy_64x64.py '
     r'defines no tta_pipeline'),
    (AFF_CFG, ['--out', 'x', '--tta'], r'--out, --tta: .*aff_resnet18_1xb8_200it_toy_64x64.py is neither a CAM '
     r'classifier nor an mmseg segmentor config'),
])
def test_refused_options_stop_before_anything_runs(run_tool_inprocess, tmp_path, config, options, message):
    with pytest.raises(SystemExit, match='error: ' + message):
        run_tool_inprocess([REPO / 'tools/test.py', config, tmp_path / 'none.pth', '--work-dir', tmp_path / 'work',
                            *options])
    assert not (tmp_path / 'work').exists()


def _args(test_tool, config, *options) -> argparse.Namespace:
    import sys
    argv, sys.argv = sys.argv, ['test.py', str(config), 'ckpt.pth', *options]
    try:
        return test_tool.parse_args()
    finally:
        sys.argv = argv


def test_accepted_options(test_tool):
    """--no-save-cams on a segmentation config is accepted and changes nothing (it has no CAMs); --out on a CAM
    config names the CAM folder, like --cam-dir."""
    seg = Config.fromfile(str(SEG_CFG))
    before = seg.to_dict() if hasattr(seg, 'to_dict') else dict(seg)
    test_tool.check_options(_args(test_tool, SEG_CFG, '--no-save-cams'), 'segmentor', seg)
    test_tool.configure_segmentation_options(seg, _args(test_tool, SEG_CFG, '--no-save-cams'))
    assert (seg.to_dict() if hasattr(seg, 'to_dict') else dict(seg)) == before
    cam = Config.fromfile(str(CAM_CFG))
    args = _args(test_tool, CAM_CFG, '--out', 'my_cams', '--cam-dir', './my_cams')
    test_tool.check_options(args, 'cam', cam)


def test_segmentation_options_set_what_mmseg_sets(test_tool, tmp_path):
    from mmseg.engine.hooks import SegVisualizationHook
    from mmseg.models import SegTTAModel
    from mmseg.registry import MODELS
    from mmseg.visualization import SegLocalVisualizer
    cfg = Config.fromfile(str(SEG_CFG))
    model = cfg.model.copy()
    test_tool.configure_segmentation_options(cfg, _args(test_tool, SEG_CFG, '--out', str(tmp_path / 'out'),
                                                        '--show-dir', str(tmp_path / 'vis'), '--tta'))
    assert cfg.test_evaluator.output_dir == str(tmp_path / 'out')
    hook = cfg.default_hooks.visualization
    assert hook.type is SegVisualizationHook and hook.draw is True and hook.interval == 1  # every image
    assert cfg.visualizer.type is SegLocalVisualizer and cfg.visualizer.save_dir == str(tmp_path / 'vis')
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline
    assert cfg.model.type is SegTTAModel and cfg.model.module == model
    tta = MODELS.build(cfg.model)
    assert isinstance(tta, SegTTAModel)
    text = cfg.pretty_text  # the Runner logs this dump: every added type prints as its dotted name
    assert 'mmseg.visualization.local_visualizer.SegLocalVisualizer' in text
    assert 'mmseg.engine.hooks.visualization_hook.SegVisualizationHook' in text


def test_cam_dir_adds_a_cam_hook_to_a_cam_config_without_one(test_tool, tmp_path):
    from csd_mm.engine.hooks import CAMGenerationHook
    cfg = Config.fromfile(str(CAM_CFG))
    cfg.custom_hooks = []
    test_tool._configure_cam_hook(cfg, str(tmp_path / 'cams'), True)
    assert len(cfg.custom_hooks) == 1 and cfg.custom_hooks[0].type is CAMGenerationHook
    assert cfg.custom_hooks[0].out_dir == str(tmp_path / 'cams') and cfg.custom_hooks[0].save_in_test
    assert 'csd_mm.engine.hooks.cam_generation_hook.CAMGenerationHook' in cfg.pretty_text
