"""tools/install.sh: every checkout's .venv imports that checkout's csd_mm, not the code of whichever checkout
used the shared cached environment last.

The cached environment here is a bare venv standing in for the real one (the layering does not depend on its
packages), holding what the old install.sh left in it: a path entry to another checkout's code, as an editable
install does. Two checkouts run the real install.sh against it."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a few venvs and bash in subprocesses: seconds

REPO = Path(__file__).resolve().parents[2]


def _checkout(path: Path, who: str) -> Path:
    """A minimal checkout: tools/install.sh, the requirement files, a csd_mm that says whose it is."""
    (path / 'tools').mkdir(parents=True)
    shutil.copy(REPO / 'tools/install.sh', path / 'tools/install.sh')
    shutil.copytree(REPO / 'requirements', path / 'requirements')
    (path / 'csd_mm').mkdir()
    (path / 'csd_mm/__init__.py').write_text(f'WHO = {who!r}\n')
    return path


def _who(python: Path, cwd: Path, via_child: bool = False) -> str:
    code = 'import csd_mm; print(csd_mm.WHO)'
    if via_child:  # a tool starting a tool with sys.executable, as run_pipeline and the tests do
        code = f'import subprocess, sys; subprocess.run([sys.executable, "-c", {code!r}], check=True)'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    return subprocess.run([str(python), '-c', code], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_two_checkouts_each_import_their_own_code(tmp_path):
    cache = tmp_path / 'cache'
    a, b = _checkout(tmp_path / 'a', 'a'), _checkout(tmp_path / 'b', 'b')
    old = _checkout(tmp_path / 'old', 'old')
    key = hashlib.sha256(b''.join(p.read_bytes() for p in sorted((REPO / 'requirements').glob('*.txt'))))
    base = cache / f'venv-{key.hexdigest()[:16]}'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(base)], check=True)
    (base / '.complete').touch()
    base_site = subprocess.run([str(base / 'bin/python'), '-c', 'import sysconfig; print(sysconfig.get_paths()'
                                '["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    Path(base_site, '__editable__.csd_mm.pth').write_text(f'{old}\n')  # the last installer's code
    (b / '.venv').symlink_to(base)  # b was set up by the old install.sh: .venv linked to the cache
    env = dict(os.environ, CSD_MM_CACHE=str(cache), PYTHON=sys.executable)
    for checkout in (a, b, a):  # a again: a rerun keeps working
        out = subprocess.run(['bash', str(checkout / 'tools/install.sh')], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert 'reusing environment' in out.stdout
    assert not (b / '.venv').is_symlink() and base.is_dir() and (base / '.complete').is_file()
    assert not any(p.name.startswith('csd_mm') and p.suffix == '.pth' for p in Path(base_site).iterdir()), \
        'install.sh wrote into the shared cached environment'
    elsewhere = tmp_path  # not inside either checkout: the cwd must not be what picks the code
    for checkout, who in ((a, 'a'), (b, 'b')):
        python = checkout / '.venv/bin/python'
        assert _who(python, elsewhere) == who
        assert _who(python, elsewhere, via_child=True) == who
    # the base environment alone still sees only what it held (the layer changed nothing there)
    assert _who(base / 'bin/python', elsewhere) == 'old'
