"""Where the toy pipeline's wall time goes: the per-stage seconds of a ``tools/run_pipeline.py`` run.

    python benchmarks/bench_pipeline.py [--pipeline-dir work_dirs/pipeline_toy]

Reads ``<pipeline-dir>/results.json``; ``tools/run_pipeline.py`` records ``stage_seconds`` (wall seconds of each
stage it ran, summed over models and seeds) and ``wall_time_s``. Nothing is run here: a fresh breakdown needs a
fresh pipeline run (``python tools/run_pipeline.py --work-dir DIR`` into an empty DIR; a rerun skips finished
stages, which then have no time).
"""
import argparse
import json
import os.path as osp
from typing import Callable, Dict, Optional

from _common import section

DEFAULT_DIR = 'work_dirs/pipeline_toy'


def run(size: str, device: str, work_dir: str, log: Callable = print, pipeline_dir: Optional[str] = None) -> Dict:
    pipeline_dir = pipeline_dir or DEFAULT_DIR
    path = osp.join(pipeline_dir, 'results.json')
    how = ('Get one with `python tools/run_pipeline.py --work-dir DIR` into an empty DIR, then '
           '`python benchmarks/run_all.py --only pipeline --pipeline-dir DIR`.')
    title = 'Toy pipeline by stage (`benchmarks/bench_pipeline.py`)'
    if not osp.isfile(path):
        return section(title, ['stage', 'seconds', 'share'], [], [f'No `{path}`: no breakdown recorded. {how}'])
    with open(path) as f:
        result = json.load(f)
    stages = result.get('stage_seconds')
    if not stages:
        return section(title, ['stage', 'seconds', 'share'], [],
                       [f'`{path}` has no `stage_seconds` (written by an older `tools/run_pipeline.py`, or every '
                        f'stage was skipped as finished). {how}'])
    total = sum(stages.values())
    rows = [[stage, f'{sec:.0f}', f'{sec / total * 100:.0f}%'] for stage, sec in
            sorted(stages.items(), key=lambda kv: -kv[1])]
    rows.append(['all stages', f'{total:.0f}', '100%'])
    log(f'  {len(stages)} stages, {total:.0f} s (wall {result.get("wall_time_s", "?")} s)')
    return section(title, ['stage', 'seconds', 'share'], rows,
                   [f'From `{path}` (models {sorted({r.get("method", "?") for r in result.get("rows", [])})}, '
                    f'wall time {result.get("wall_time_s", "?")} s).'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pipeline-dir', default=DEFAULT_DIR)
    args = parser.parse_args()
    print(run('toy', 'cpu', '', pipeline_dir=args.pipeline_dir))


if __name__ == '__main__':
    main()
