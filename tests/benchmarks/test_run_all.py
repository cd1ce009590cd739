"""Tests of benchmarks/run_all.py: it runs the benchmarks at the tiny size and writes the markdown (no timings
are asserted: the benchmarks' figures are measurements, not pass/fail conditions)."""
import json
import os.path as osp
import sys

import pytest

BENCH_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'benchmarks')
sys.path.insert(0, BENCH_DIR)

import run_all  # noqa: E402


def _args(tmp_path, *only, pipeline_dir=None):
    argv = ['--size', 'tiny', '--out', str(tmp_path / 'benchmarks.md'), '--results-dir', str(tmp_path / 'res'),
            '--work-dir', str(tmp_path / 'wd'), '--only', *only]
    return argv + (['--pipeline-dir', str(pipeline_dir)] if pipeline_dir else [])


def test_render_markdown_orders_runs_and_marks_targets():
    machine = dict(cpu='X', cores=2, load_average=[1.0, 1.0, 1.0], omp_num_threads='1', python='3', torch='2',
                   numpy='2', mmengine='0.10.7')
    sec = dict(title='Seed evaluation', header=['a', 'b'], rows=[['1', '2']], notes=['a note'],
               targets={'fast enough': True, 'small enough': False})
    records = {f'{dev}_{size}': dict(command=f'python benchmarks/run_all.py --device {dev} --size {size}',
                                     date='2026-11-30 20:00 UTC', wall_s=10.0, sections=dict(seed_eval=sec),
                                     machine=dict(machine, gpu='H200', cuda='13') if dev == 'cuda' else machine)
               for dev, size in (('cpu', 'toy'), ('cuda', 'voc'))}
    md = run_all.render_markdown(records)
    assert md.index('--device cuda --size voc`') < md.index('--device cpu --size toy`')  # the GPU run first
    assert 'GPU figures: missing' not in md and 'GPU H200 (CUDA 13)' in md
    assert '| a | b |\n|---|---|\n| 1 | 2 |' in md and 'fast enough: **met**; small enough: **missed**' in md
    assert 'GPU figures: missing' in run_all.render_markdown({'cpu_toy': records['cpu_toy']})
    # a section kept from an earlier --only run says so, with that run's command and date
    old = dict(sec, date='2026-11-29 10:00 UTC', command='python benchmarks/run_all.py --only seed_eval')
    md = run_all.render_markdown({'cpu_toy': dict(records['cpu_toy'], sections=dict(seed_eval=old))})
    assert 'From an earlier run: `python benchmarks/run_all.py --only seed_eval`, 2026-11-29 10:00 UTC.' in md
    assert 'From an earlier run' not in run_all.render_markdown(  # the same date: measured by this run
        {'cpu_toy': dict(records['cpu_toy'], sections=dict(seed_eval=dict(sec, date='2026-11-30 20:00 UTC')))})


@pytest.mark.slow
def test_a_failing_benchmark_is_recorded_and_the_others_still_run(tmp_path):
    pipe = tmp_path / 'pipe'
    pipe.mkdir()
    (pipe / 'results.json').write_text('{not json')
    record = run_all.main(_args(tmp_path, 'pipeline', 'seed_eval', pipeline_dir=pipe))
    assert 'JSONDecodeError' in record['sections']['pipeline']['error']
    seed = record['sections']['seed_eval']
    assert 'error' not in seed and len(seed['rows']) == 1 and 'identical' in seed['rows'][0][-1]
    md = (tmp_path / 'benchmarks.md').read_text()
    assert 'Failed: `JSONDecodeError' in md and '### Seed evaluation' in md
    assert '**GPU figures: missing.**' in md and 'Last GPU measurement (2026-11-30' in md
    saved = json.loads((tmp_path / 'res' / 'cpu_tiny.json').read_text())
    assert saved['machine']['cores'] >= 1 and saved['command'].startswith('python benchmarks/run_all.py --size tiny')


@pytest.mark.slow
def test_tiny_run_writes_every_table(tmp_path):
    pipe = tmp_path / 'pipe'
    pipe.mkdir()
    (pipe / 'results.json').write_text(json.dumps(dict(wall_time_s=30.0, rows=[dict(method='ResNet baseline')],
                                                       stage_seconds=dict(stage0_train=20.0, seeds=10.0))))
    record = run_all.main(_args(tmp_path, 'train_step', 'seed_eval', 'pipeline', pipeline_dir=pipe))
    assert not any('error' in s for s in record['sections'].values()), record['sections']
    md = (tmp_path / 'benchmarks.md').read_text()
    for title in ('### Training step', '### Seed evaluation', '### Toy pipeline by stage'):
        assert title in md
    assert '| stage0_train | 20 | 67% |' in md and '| all stages | 30 | 100% |' in md
    train = record['sections']['train_step']
    assert len(train['rows']) == 3 and len(train['targets']) == 4  # 2 models x 2 modes, + DeepLab's row
    # a rerun of one benchmark keeps the other sections of the same record
    first_date = record['date']
    record = run_all.main(_args(tmp_path, 'pipeline', pipeline_dir=pipe))
    assert set(record['sections']) == {'train_step', 'seed_eval', 'pipeline'}
    # ... each saying which run measured it
    assert record['sections']['train_step']['date'] == first_date
    assert record['sections']['train_step']['command'].endswith('--only train_step seed_eval pipeline '
                                                                f'--pipeline-dir {pipe}')
    assert record['sections']['pipeline']['command'] == record['command']
    if first_date != record['date']:  # the minute changed between the two runs
        assert f'From an earlier run: `{record["sections"]["train_step"]["command"]}`, {first_date}.' in \
            (tmp_path / 'benchmarks.md').read_text()
