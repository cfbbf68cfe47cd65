"""Failures a researcher can act on: OS faults and interrupts are one line, not a traceback;
``freeness-lab-collect`` into a missing folder works; a time limit interrupts Python code."""

from __future__ import annotations

import errno
import signal
import time

import pandas as pd
import pytest

from freeness_lab.harness import app, collect, storage
from freeness_lab.harness.deadline import TimeLimitExceeded, time_limit
from freeness_lab.harness.studies import spectrum as spectrum_study

SMALL = ["experiment=spectrum", "sweep=tiny", "n_jobs=1", "progress=false",
         "experiment.eigenvalues=false", "experiment.spectral_trials=0"]


def _run_dir(tmp_path) -> str:
    return f"hydra.run.dir={tmp_path / 'run'}"


def _one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_full_disk_is_one_line_and_the_rerun_completes(tmp_path, monkeypatch, capsys):
    def full(path, df, provenance):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(storage, "write_table", full)
    with pytest.raises(SystemExit) as stop:
        app.main([*SMALL, _run_dir(tmp_path)])
    assert stop.value.code == 1
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "re-run" in line
    monkeypatch.undo()
    assert app.main([*SMALL, _run_dir(tmp_path)]) == 0
    assert "reused 4" in capsys.readouterr().out  # every finished cell was kept


def test_interrupt_is_one_line_and_keeps_finished_cells(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(spectrum_study, "theory_table", interrupted)
    with pytest.raises(SystemExit) as stop:
        app.main([*SMALL, _run_dir(tmp_path)])
    assert stop.value.code == 130
    assert "interrupted" in _one_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert app.main([*SMALL, _run_dir(tmp_path)]) == 0
    assert "reused 4" in capsys.readouterr().out


def test_collect_into_a_missing_folder_creates_it(tmp_path, capsys):
    assert app.main([*SMALL, _run_dir(tmp_path)]) == 0
    out = tmp_path / "not" / "yet" / "all.parquet"
    assert collect.main([str(tmp_path / "run"), "--table", "spectrum", "-o", str(out)]) == 0
    assert len(pd.read_parquet(out)) > 0
    assert collect.main([str(tmp_path / "missing"), "--table", "spectrum"]) == 2
    assert "missing" in _one_line(capsys.readouterr().err.splitlines()[-1])


def test_time_limit_interrupts_python_code_and_restores_the_alarm():
    previous = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded), time_limit(0.2) as enforced:
        assert enforced
        while True:
            sum(range(1000))
    assert time.perf_counter() - start < 2.0
    assert signal.getsignal(signal.SIGALRM) is previous
    with time_limit(5.0):  # a block that finishes in time is left alone
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    # not an Exception: code that classifies failures with `except Exception` cannot eat it
    assert not issubclass(TimeLimitExceeded, Exception)


def test_unexpected_error_is_one_line_with_the_traceback_in_the_run_folder(tmp_path, monkeypatch,
                                                                          capsys):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a study")
    monkeypatch.setattr(spectrum_study, "theory_table", bug)
    with pytest.raises(SystemExit) as stop:
        app.main([*SMALL, _run_dir(tmp_path)])
    assert stop.value.code == 1
    line = _one_line(capsys.readouterr().err)
    assert "ZeroDivisionError: division by zero in a study" in line
    assert "Traceback" in (tmp_path / "run" / app.ERROR_LOG).read_text()
