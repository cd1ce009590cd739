"""Console progress of the pipeline: parsing mmengine's log lines and the ETA mmengine wrote on them, the drawn
line, following a growing log file, and the stage timer."""
import io
import threading
import time

from csd_mm.utils.progress import (ConsoleProgress, LogProgressParser, StageTimer, format_duration,
                                   parse_progress_line, progress_line)

TRAIN_LINE = ('11/30 19:22:26 - mmengine - INFO - Iter(train) [ 25/300]  base_lr: 5.0000e-02 lr: 4.7e-02  eta: '
              '0:01:10  time: 0.2100  data_time: 0.0100  memory: 0  loss: 0.6931')


def test_parse_logger_and_progress_bar_lines_with_mmengines_eta():
    assert parse_progress_line(TRAIN_LINE) == ('train', 25, 300, 70.0)  # eta: 0:01:10
    assert parse_progress_line('... - INFO - Iter(test) [  4/100]    eta: 0:00:09') == ('test', 4, 100, 9.0)
    assert parse_progress_line('... - INFO - Epoch(val)  [1][ 10/183]  eta: 0:00:01') == ('val', 10, 183, 1.0)
    # an epoch-based training: the bar counts epoch 2's iterations, mmengine's ETA is the run's
    epoch_line = '... - INFO - Epoch(train)  [2][ 10/183]  lr: 0.1  eta: 0:44:00  time: 1.2'
    assert parse_progress_line(epoch_line) == ('train epoch 2', 10, 183, 2640.0)
    assert progress_line('irn', *parse_progress_line(epoch_line), width=4).endswith('10/183   5% run ETA 44:00')
    assert progress_line('cam', 'train', 10, 183, 60.0, width=4).endswith('10/183   5% ETA 1:00')
    # str(datetime.timedelta) past a day: 1 day, 2 h 3 min 4 s = 86400 + 7200 + 180 + 4
    assert parse_progress_line('Iter(train) [ 1/9]  eta: 1 day, 2:03:04  time: 9') == ('train', 1, 9, 93784.0)
    assert parse_progress_line('Iter(train) [ 1/9]  eta: 3 days, 0:00:00') == ('train', 1, 9, 259200.0)
    assert parse_progress_line('Iter(train) [ 1/9]  lr: 0.1  loss: 1') == ('train', 1, 9, None)  # no IterTimerHook
    assert parse_progress_line('[>>>>>      ] 40/100, 10.3 task/s, elapsed: 4s, ETA:     6s', 'CAMs') == (
        'CAMs', 40, 100, 6.0)
    assert parse_progress_line('[          ] 0/24, elapsed: 0s, ETA:') == ('progress', 0, 24, None)
    assert parse_progress_line('11/30 19:22:26 - mmengine - INFO - Checkpoints will be saved to /x') is None
    assert parse_progress_line('[pipeline 19:00:00] 3/4 done') is None


def test_parser_joins_split_lines_and_names_the_bar_after_its_announcement():
    parser = LogProgressParser()
    assert parser.feed(TRAIN_LINE[:60]) == []  # an unterminated line waits for its end
    assert parser.feed(TRAIN_LINE[60:] + '\n') == [('train', 25, 300, 70.0)]
    assert parser.feed(TRAIN_LINE, final=True) == [('train', 25, 300, 70.0)]  # the writer ended: no line end
    chunk = ('x - INFO - CAM generation: 24 of 24 images to write to /w/cams\n'
             '[      ] 0/24, elapsed: 0s, ETA:\r[>   ] 1/24, 12.4 task/s, elapsed: 0s, ETA:     2s\r[>>>>] 24/2')
    assert parser.feed(chunk) == [('CAM generation', 0, 24, None), ('CAM generation', 1, 24, 2.0)]
    assert parser.feed('4, 9.0 task/s, elapsed: 3s, ETA:     0s\n') == [('CAM generation', 24, 24, 0.0)]
    # the next bar (unannounced: the source bank) is another task
    assert parser.feed('[>>>] 19/19, 322.6 task/s, elapsed: 0s, ETA:     0s\n') == [('progress', 19, 19, 0.0)]


def test_duration_and_line_format():
    assert format_duration(None) == '-:--'
    assert format_duration(42.4) == '0:42'
    assert format_duration(3 * 60 + 7) == '3:07'
    assert format_duration(3600 + 61) == '1:01:01'
    assert progress_line('train seed0/resnet/csd', 'train', 150, 300, 30.0, width=10) == (
        'train seed0/resnet/csd | train [#####-----] 150/300  50% ETA 0:30')
    assert progress_line('x', 'test', 7, 7, 0.0, width=4) == 'x | test [####] 7/7 100% ETA 0:00'
    # a parsed mmengine line drawn: its own ETA (eta: 0:01:10), 25 / 300 = 8%
    assert progress_line('run', *parse_progress_line(TRAIN_LINE), width=10) == (
        'run | train [----------] 25/300   8% ETA 1:10')


def test_plain_console_prints_messages_and_finished_phases():
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False, plain_interval=1e9)
    console.message('stage 0')
    console.show('not printed')  # during a phase: one line per plain_interval
    console.show('phase done', final=True)
    assert out.getvalue() == 'stage 0\nphase done\n'
    console.plain_interval = 0.0
    console.show('a line per interval')
    assert out.getvalue().endswith('phase done\na line per interval\n')


def test_interactive_console_redraws_in_place_and_ends_the_line_before_a_message():
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=True)
    console.show('a | train 1/3')
    console.show('a | train 2/3')
    console.message('next stage')
    assert out.getvalue() == '\ra | train 1/3\ra | train 2/3\nnext stage\n'


def test_quiet_console_prints_nothing():
    out = io.StringIO()
    console = ConsoleProgress(out, quiet=True, interactive=True)
    console.message('x')
    console.show('y', final=True)
    assert out.getvalue() == ''


def test_follow_shows_the_progress_appended_to_a_log_during_the_block(tmp_path):
    log = tmp_path / 'pipeline_stage.log'
    log.write_text('x - INFO - Iter(train) [ 5/5]  from an earlier run, not shown\n')
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False, poll_interval=0.01, plain_interval=1e9)
    appended = threading.Event()

    def child():  # a child process appending to its log
        with open(log, 'a') as f:
            for line in ('x - INFO - Iter(train) [ 2/4]  eta: 0:00:01\n', 'x - INFO - Iter(train) [ 4/4]\n',
                         'x - INFO - CAM generation: 3 of 3 images\n', '[>  ] 1/3, 1 task/s, elapsed: 1s, ETA: 2s'):
                f.write(line)
                f.flush()
                time.sleep(0.03)
        appended.set()

    with console.follow(str(log), 'train.py run'):
        thread = threading.Thread(target=child)
        thread.start()
        appended.wait(5)
        thread.join()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('train.py run | train [') and ' 4/4 100% ETA 0:00' in lines[0]  # phase done
    assert lines[1].startswith('train.py run | CAM generation [') and ' 1/3 ' in lines[1]  # shown when the child ends
    assert lines[1].endswith(' ETA 0:02')  # the bar's own ETA: 2s
    assert len(lines) == 2


def test_interactive_follow_shows_mmengines_eta_during_a_phase(tmp_path):
    log = tmp_path / 'pipeline_stage.log'
    log.write_text('')
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=True, poll_interval=0.01)
    with console.follow(str(log), 'run'):
        log.write_text(TRAIN_LINE + '\n' + TRAIN_LINE.replace('[ 25/300]', '[ 50/300]').replace('0:01:10', '0:00:55')
                       + '\n')  # read while the block runs or once more as it ends
    drawn = [part.rstrip() for part in out.getvalue().split('\r') if part]
    assert drawn[-1].endswith('50/300  17% ETA 0:55')  # mmengine's ETA of the last line, not one of ours


def test_follow_from_a_start_offset_shows_what_a_child_wrote_before_the_block(tmp_path):
    log = tmp_path / 'pipeline_stage.log'
    log.write_text('x - INFO - Iter(train) [ 5/5]  from an earlier run, not shown\n')
    start = log.stat().st_size  # taken before the child starts (tools/run_pipeline.py forks it first)
    with open(log, 'a') as f:  # the child's first line, written before the follower starts
        f.write('x - INFO - Iter(train) [ 3/3]\n')
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False, poll_interval=0.01, plain_interval=1e9)
    with console.follow(str(log), 'train.py run', start=start):
        pass
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and ' 3/3 100% ' in lines[0]


def test_stage_timer_adds_up_by_run_and_stage(monkeypatch):
    clock = iter([0.0, 2.0, 10.0, 13.5, 20.0, 21.0])
    monkeypatch.setattr(time, 'perf_counter', lambda: next(clock))
    timer = StageTimer()
    with timer.measure('seed0/resnet/baseline', 'cam_training'):
        pass
    with timer.measure('seed0/resnet/csd', 'cam_training'):
        pass
    with timer.measure('seed0/resnet/csd', 'seeds'):
        pass
    assert timer.of_run('seed0/resnet/csd') == {'cam_training': 3.5, 'seeds': 1.0}
    assert timer.of_run('never ran') == {}
    assert timer.totals() == {'cam_training': 5.5, 'seeds': 1.0}


def test_follow_of_an_epoch_based_training_keeps_the_runs_eta_at_each_epochs_end(tmp_path):
    log = tmp_path / 'pipeline_stage.log'
    log.write_text('')
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False, poll_interval=0.01, plain_interval=1e9)
    with console.follow(str(log), 'irn'):
        log.write_text('x - INFO - Epoch(train) [1][4/4]  eta: 0:02:00\n'
                       'x - INFO - Epoch(train) [2][4/4]  eta: 0:00:00\n')
    lines = out.getvalue().splitlines()
    # epoch 1's bar is full but two minutes of the run are left; the last epoch's end is the run's
    assert lines == ['irn | train epoch 1 [####################] 4/4 100% run ETA 2:00',
                     'irn | train epoch 2 [####################] 4/4 100% run ETA 0:00']
