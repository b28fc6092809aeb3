"""A long training run keeps its sandbox scratch bounded: the worker stores each iteration's simtrace as it is
written, so the runner keeps only the last few, and empties the robomaker log (the same rows again, not stored)."""

from evaluator.training_runner import KEEP_SIMTRACES, _bound_logs


def test_only_the_last_simtraces_stay_and_the_log_is_emptied(tmp_path):
    simtraces = tmp_path / "training-simtrace"
    simtraces.mkdir()
    for number in range(15):  # iterations 1..15 wrote files 0..14
        (simtraces / f"{number}-iteration.csv").write_text("episode,steps\n")
    log = tmp_path / "logs" / "training" / "training-20261203150000-robomaker.log"
    log.parent.mkdir(parents=True)
    log.write_text("SIM_TRACE_LOG:0,1,...\n" * 100)

    _bound_logs(tmp_path, iteration=15)

    kept = sorted(int(path.name.split("-")[0]) for path in simtraces.iterdir())
    assert kept == list(range(15 - KEEP_SIMTRACES, 15))
    assert log.exists() and log.stat().st_size == 0
