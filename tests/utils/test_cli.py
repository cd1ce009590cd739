"""csd_mm.utils.cli: the command-line set-up shared by tools/train.py and tools/test.py."""
import argparse
import os
import os.path as osp

import pytest

from csd_mm.utils.cli import add_runner_args, default_work_dir, export_local_rank, load_runner_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_runner_args(parser)
    return parser


def test_runner_args_parse_overrides_launcher_and_both_local_rank_spellings():
    args = _parser().parse_args(['a.py', '--cfg-options', 'model.x=2', 'data.y=[1,2]', '--launcher', 'slurm',
                                 '--local-rank', '3'])
    assert args.cfg_options == {'model.x': 2, 'data.y': [1, 2]}
    assert args.launcher == 'slurm' and args.local_rank == 3
    assert _parser().parse_args(['a.py', '--local_rank', '1']).local_rank == 1
    defaults = _parser().parse_args(['a.py'])
    assert defaults.cfg_options is None and defaults.launcher == 'none' and defaults.local_rank == 0
    with pytest.raises(SystemExit):
        _parser().parse_args(['a.py', '--launcher', 'kubernetes'])


def test_local_rank_is_exported_only_when_the_launcher_set_none(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    export_local_rank(argparse.Namespace(local_rank=2))
    assert os.environ['LOCAL_RANK'] == '2'
    monkeypatch.setenv('LOCAL_RANK', '5')  # torchrun's
    export_local_rank(argparse.Namespace(local_rank=0))
    assert os.environ['LOCAL_RANK'] == '5'


def test_work_dir_command_line_then_config_then_config_name(tmp_path):
    named = tmp_path / 'named_cfg.py'
    named.write_text("work_dir = 'from_config'\nmodel = dict(x=1)\n")
    plain = tmp_path / 'plain_cfg.py'
    plain.write_text('model = dict(x=1)\n')
    assert load_runner_config(str(named), work_dir='from_cli').work_dir == 'from_cli'
    assert load_runner_config(str(named)).work_dir == 'from_config'
    assert load_runner_config(str(plain)).work_dir == osp.join('./work_dirs', 'plain_cfg') == \
        default_work_dir(str(plain))
    # the overrides are merged before the work dir is chosen, so an override of work_dir counts as the config's
    cfg = load_runner_config(str(plain), launcher='pytorch', cfg_options={'model.x': 4, 'work_dir': 'over'})
    assert cfg.model.x == 4 and cfg.launcher == 'pytorch' and cfg.work_dir == 'over'
