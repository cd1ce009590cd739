"""The commands that README.md, docs/*.md, the config headers and the tools' docstrings give for the tools.

A newcomer copies them as they are, so each is checked against the code, without running it: every config and
script it names exists, every ``--option`` it passes is one the tool defines, a training of a ``...GxbB...``
config runs with the recipe's total batch ``G x B`` (``train_dataloader.batch_size`` is per process), and a
documented training of a VOC / COCO config starts from local pretrained weights (nothing is downloaded, and
CSD is compared with a baseline trained from ImageNet / DeiT weights). The tools' example blocks keep their
line continuations in ``--help`` (a backslash-newline in a plain docstring joins the lines).
"""
import ast
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Set

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / 'README.md'] + sorted((REPO / 'docs').glob('*.md'))
CONFIG_FILES = sorted(p for p in (REPO / 'configs').rglob('*.py'))
TOOL_FILES = sorted((REPO / 'tools').rglob('*.py'))
SHELL_TOOLS = {'dist_train.sh': 'train.py', 'slurm_train.sh': 'train.py', 'dist_test.sh': 'test.py',
               'slurm_test.sh': 'test.py'}
TRAINERS = ('train.py', 'dist_train.sh', 'slurm_train.sh')
# options of pretrained weights in --cfg-options (CAM networks, refiner backbones, DeepLab) or a checkpoint
WEIGHT_KEYS = ('init_cfg.checkpoint=', 'backbone.pretrained=', 'model.pretrained=', '--load-from')
# tools of other projects that the docs name (mmsegmentation's VOC aug converter, docs/data_preparation.md)
OTHER_PROJECTS_TOOLS = {'dataset_converters/voc_aug.py'}

_CMD = re.compile(r'(?P<env>(?:\b[A-Z_]+=\S+\s+)*)(?:bash\s+|python\s+)?(?<![\w/.])tools/(?P<tool>[\w/]+\.(?:py|sh))'
                  r'(?P<args>[^`#\n]*)')
_GXB = re.compile(r'_(\d+)xb(\d+)_')


class Command(NamedTuple):
    where: str
    env: Dict[str, str]
    tool: str
    args: List[str]


def _logical_lines(path: Path) -> List[str]:
    """The file's lines with shell continuations joined (config comments: without their ``#``)."""
    text = path.read_text(encoding='utf-8')
    if path.suffix == '.py' and 'configs' in path.parts:
        text = '\n'.join(re.sub(r'^\s*#\s?', '', line) for line in text.splitlines())
    return re.sub(r'\\+\n\s*', ' ', text).splitlines()


def _commands(paths: List[Path]) -> List[Command]:
    commands = []
    for path in paths:
        for line in _logical_lines(path):
            for m in _CMD.finditer(line):
                env = dict(kv.split('=', 1) for kv in m.group('env').split())
                commands.append(Command(f'{path.relative_to(REPO)}: {m.group(0).strip()}', env, m.group('tool'),
                                        m.group('args').split()))
    return commands


DOC_COMMANDS = _commands(DOCS + CONFIG_FILES)
ALL_COMMANDS = DOC_COMMANDS + _commands(TOOL_FILES)


def _options_of(tool: str) -> Set[str]:
    """The ``--options`` a tool's parser defines (the shared runner options of train.py / test.py included)."""
    sources = [REPO / 'tools' / tool]
    if Path(tool).name in ('train.py', 'test.py'):
        sources.append(REPO / 'csd_mm/utils/cli.py')
    return {opt for src in sources for opt in re.findall(r"""['"](--[a-z][\w-]*)['"]""", src.read_text())}


def _config_of(cmd: Command) -> Optional[str]:
    return next((a for a in cmd.args if a.startswith('configs/') and a.endswith('.py')), None)


def _recipe_batch(config: str) -> Optional[int]:
    """``G x B`` of the config's name, or of the first ``...GxbB...`` config it imports (a CSD config)."""
    m = _GXB.search(Path(config).name)
    if m is None:
        imported = re.findall(r'from \.\.[\w.]*?\.(\w+) import', (REPO / config).read_text())
        m = next((_GXB.search(name + '_') for name in imported if _GXB.search(name + '_')), None)
    return None if m is None else int(m.group(1)) * int(m.group(2))


def _processes(cmd: Command) -> int:
    tool = Path(cmd.tool).name
    if tool == 'dist_train.sh':
        return int(cmd.args[cmd.args.index(_config_of(cmd)) + 1])
    if tool == 'slurm_train.sh':
        return int(cmd.env.get('GPUS', 4))  # the script's default
    return 1


def test_the_commands_were_found():
    trainings = [c for c in DOC_COMMANDS if Path(c.tool).name in TRAINERS and _config_of(c)]
    assert len(trainings) >= 20, [c.where for c in trainings]
    assert any('README.md' in c.where for c in trainings)


@pytest.mark.parametrize('cmd', ALL_COMMANDS, ids=lambda c: c.where[:120])
def test_named_tool_config_and_options_exist(cmd):
    if cmd.tool in OTHER_PROJECTS_TOOLS:
        return
    assert (REPO / 'tools' / cmd.tool).is_file(), f'{cmd.where}: no tools/{cmd.tool}'
    config = _config_of(cmd)
    if config and not config.startswith('configs/my_project/'):  # docs/extending.md's example files
        assert (REPO / config).is_file(), f'{cmd.where}: {config} does not exist'
    tool = SHELL_TOOLS.get(Path(cmd.tool).name, cmd.tool)
    if not tool.endswith('.py'):
        return
    given = set(re.findall(r'(?<![\w-])--[a-z][\w-]*', ' '.join(cmd.args)))
    unknown = sorted(given - _options_of(tool))
    assert not unknown, f'{cmd.where}: tools/{tool} has no option {unknown}'


@pytest.mark.parametrize('cmd', [c for c in ALL_COMMANDS if Path(c.tool).name in TRAINERS and _config_of(c)],
                         ids=lambda c: c.where[:120])
def test_trainings_keep_the_recipe_batch(cmd):
    config = _config_of(cmd)
    recipe = _recipe_batch(config)
    if recipe is None:
        return
    override = [a.split('=', 1)[1] for a in cmd.args if a.startswith('train_dataloader.batch_size=')]
    if override:
        per_process = int(override[-1])
    else:
        m = _GXB.search(Path(config).name) or _GXB.search(
            next(n + '_' for n in re.findall(r'from \.\.[\w.]*?\.(\w+) import', (REPO / config).read_text())
                 if _GXB.search(n + '_')))
        per_process = int(m.group(2))
    total = per_process * _processes(cmd)
    assert total == recipe, (f'{cmd.where}: {_processes(cmd)} process(es) x batch {per_process} = {total}, but the '
                             f"recipe's total batch is {recipe}: set train_dataloader.batch_size={recipe} // GPUs")


@pytest.mark.parametrize('cmd', [c for c in DOC_COMMANDS if Path(c.tool).name in TRAINERS and _config_of(c)
                                 and not _config_of(c).startswith('configs/toy/')
                                 and '...' not in c.args and '--resume' not in c.args],
                         ids=lambda c: c.where[:120])
def test_documented_trainings_start_from_local_weights(cmd):
    assert any(key in arg for arg in cmd.args for key in WEIGHT_KEYS), (
        f'{cmd.where}: a VOC / COCO training without local pretrained weights starts from random init')


@pytest.mark.parametrize('path', TOOL_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_tool_docstrings_keep_their_line_continuations(path):
    src = path.read_text(encoding='utf-8')
    module = ast.parse(src)
    if not (module.body and isinstance(module.body[0], ast.Expr) and isinstance(module.body[0].value, ast.Constant)):
        return
    literal = ast.get_source_segment(src, module.body[0].value)
    eaten = re.findall(r'(?<!\\)\\\n', literal) if not literal.lower().startswith('r') else []
    assert not eaten, f'{path}: a backslash-newline in the docstring joins its example lines (write \\\\)'
