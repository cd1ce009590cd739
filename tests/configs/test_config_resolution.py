"""Every file under configs/, the ``_base_`` files included, resolves with mmengine to plain data.

The same helpers dump the resolved configs, so that a refactoring of the configs (a block moved into a base, a
child inheriting from its twin) can be proven not to change any value::

    python tests/configs/test_config_resolution.py dump /tmp/before      # on the untouched tree
    # ... refactor ...
    python tests/configs/test_config_resolution.py dump /tmp/after
    python tests/configs/test_config_resolution.py compare /tmp/before /tmp/after  # exit 1: a config changed or gone

Each dump is ``<config path with / as __>.json``: ``cfg.to_dict()`` with its keys sorted, tuples marked as such
(a tuple and a list of the same values are different configs) and the classes of ``type`` as their import paths.
"""
import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
EVERY_CONFIG_FILE = sorted((REPO / 'configs').rglob('*.py'))


def plain(value: Any) -> Any:
    """``value`` as JSON data that keeps what JSON would lose: tuples stay distinct from lists.

    Args:
        value: a resolved config value (dicts, lists, tuples, scalars; classes are already import-path strings
            in ``Config.to_dict()``, anything else is written as its ``repr``).

    Returns:
        Dicts with string keys, lists, ``{'<tuple>': [...]}`` for tuples, and JSON scalars.
    """
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return {'<tuple>': [plain(item) for item in value]}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {'<repr>': repr(value)}


def resolved_text(path: Path) -> str:
    """The resolved config of ``path`` as sorted, indented JSON text (the dump of one config)."""
    cfg = Config.fromfile(str(path))
    return json.dumps(plain(cfg.to_dict()), indent=1, sort_keys=True) + '\n'


def dump_name(path: Path) -> str:
    """The dump file name of the config ``path``: its path under configs/, with ``/`` as ``__``."""
    return str(path.relative_to(REPO / 'configs')).replace('/', '__')[:-len('.py')] + '.json'


def dump(out_dir: Path) -> List[Path]:
    """Writes the resolved text of every config file to ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in EVERY_CONFIG_FILE:
        target = out_dir / dump_name(path)
        target.write_text(resolved_text(path))
        written.append(target)
    return written


def compare(before: Path, after: Path) -> Dict[str, str]:
    """The differences between two dump folders: ``{file name: unified diff or 'missing in ...'}``."""
    differences = {}
    for name in sorted({p.name for p in before.glob('*.json')} | {p.name for p in after.glob('*.json')}):
        old, new = before / name, after / name
        if not old.exists() or not new.exists():
            differences[name] = f'missing in {after if old.exists() else before}'
            continue
        old_text, new_text = old.read_text(), new.read_text()
        if old_text != new_text:
            differences[name] = ''.join(
                difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True), str(old), str(new)))
    return differences


def shared_containers(cfg: Config) -> List[Tuple[str, str]]:
    """The pairs of key paths of ``cfg`` that hold one and the same dict or list object.

    A child written as ``dict(base_block, key=...)`` shares the nested dicts of ``base_block`` while its file runs;
    mmengine copies them when it turns the result into ConfigDicts. Were one left shared, a ``--cfg-options`` on
    one key would change the other too.
    """
    seen: Dict[int, str] = {}
    shared = []

    def walk(value: Any, key_path: str) -> None:
        if not isinstance(value, (dict, list)):
            return
        if id(value) in seen:
            shared.append((seen[id(value)], key_path))
            return
        seen[id(value)] = key_path
        # dict.items: the raw values (ConfigDict.items would import the classes of the lazy `type`s)
        items = dict.items(value) if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            walk(item, f'{key_path}.{key}' if key_path else str(key))

    walk(cfg._cfg_dict, '')
    return shared


def _id(path: Path) -> str:
    return str(path.relative_to(REPO / 'configs'))


@pytest.mark.parametrize('path', EVERY_CONFIG_FILE, ids=_id)
def test_every_config_file_resolves_to_plain_data(path):
    text = resolved_text(path)
    data = json.loads(text)
    assert data, f'{path} defines nothing'
    assert '<repr>' not in text, f'{path} holds a value that is not config data (a class, an object)'
    assert resolved_text(path) == text, f'{path} resolves differently on a second load'


@pytest.mark.parametrize('path', EVERY_CONFIG_FILE, ids=_id)
def test_no_two_keys_of_a_config_share_one_object(path):
    assert shared_containers(Config.fromfile(str(path))) == []


def test_shared_containers_finds_a_shared_dict():
    cfg = Config(dict(a=dict(b=1)))
    assert shared_containers(cfg) == []
    dict.__setitem__(cfg._cfg_dict, 'c', dict.__getitem__(cfg._cfg_dict, 'a'))  # bypasses ConfigDict's copy
    assert shared_containers(cfg) == [('a', 'c')]


def test_plain_keeps_tuples_apart_from_lists():
    assert plain(dict(a=(1, 2), b=[1, 2])) == {'a': {'<tuple>': [1, 2]}, 'b': [1, 2]}
    assert plain({'c': object})['c'] == {'<repr>': "<class 'object'>"}


def test_compare_names_changed_and_missing_dumps(tmp_path):
    before, after = tmp_path / 'before', tmp_path / 'after'
    before.mkdir()
    after.mkdir()
    (before / 'same.json').write_text('{"a": 1}\n')
    (after / 'same.json').write_text('{"a": 1}\n')
    (before / 'changed.json').write_text('{"a": 1}\n')
    (after / 'changed.json').write_text('{"a": 2}\n')
    (before / 'gone.json').write_text('{}\n')
    differences = compare(before, after)
    assert sorted(differences) == ['changed.json', 'gone.json']
    assert '-{"a": 1}' in differences['changed.json'] and '+{"a": 2}' in differences['changed.json']
    assert differences['gone.json'] == f'missing in {after}'


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    dump_parser = sub.add_parser('dump', help='write the resolved config of every file under configs/')
    dump_parser.add_argument('out_dir', type=Path)
    compare_parser = sub.add_parser('compare', help='diff two dump folders (exit status 1 when a dump of the first '
                                                   'differs or is missing in the second)')
    compare_parser.add_argument('before', type=Path)
    compare_parser.add_argument('after', type=Path)
    args = parser.parse_args(argv)
    if args.command == 'dump':
        print(f'{len(dump(args.out_dir))} configs dumped to {args.out_dir}')
        return 0
    differences = compare(args.before, args.after)
    # a config file added since the first dump (a new base) changes no existing config
    new = sorted(name for name, diff in differences.items() if diff == f'missing in {args.before}')
    changed = {name: diff for name, diff in differences.items() if name not in new}
    for name, diff in changed.items():
        print(f'== {name}\n{diff}')
    print(f'{len(changed)} of {len(list(args.before.glob("*.json")))} dumps differ or are missing; '
          f'{len(new)} new: {", ".join(new) or "none"}')
    return 1 if changed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
