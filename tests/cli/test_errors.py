"""Commands report bad input in one line and let internal errors through.

A Keras shape error is a ``ValueError``; a command that caught bare
``ValueError`` turned such bugs into one-line messages without a traceback.
Each command here is driven into a library function that raises either a
project error (one line, status 2) or a plain ``ValueError`` / ``KeyError``
(which must propagate).
"""

from __future__ import annotations

import pytest

from taskonomy_tf.errors import InputError, UnknownNameError, UserError


def _raiser(exc):
    def fn(*args, **kwargs):
        raise exc

    return fn


def _call(command, exc, monkeypatch, results_dir, tmp_path) -> int:
    """Runs ``command`` with its library entry point raising ``exc``."""
    if command == "train":
        import taskonomy_tf.training
        from taskonomy_tf.train import main

        monkeypatch.setattr(taskonomy_tf.training, "train_and_evaluate", _raiser(exc))
        return main(["--task", "edges"])
    if command == "pipeline":
        import taskonomy_tf.pipeline
        from taskonomy_tf.pipeline.__main__ import main

        monkeypatch.setattr(taskonomy_tf.pipeline, "run_pipeline", _raiser(exc))
        return main([])
    if command == "taxonomy":
        import taskonomy_tf.taxonomy.__main__ as cli

        monkeypatch.setattr(cli, "solve_taxonomy", _raiser(exc))
        return cli.main(["solve", "--affinities", str(results_dir / "affinities_16k.json"),
                         "--budget", "3"])
    import taskonomy_tf.transfer.schedule
    from taskonomy_tf.transfer.__main__ import main

    monkeypatch.setattr(taskonomy_tf.transfer.schedule, "run_grid", _raiser(exc))
    return main(["grid", "--tasks", "edges,normals", "--models", str(tmp_path),
                 "--data", str(tmp_path), "--out", str(tmp_path / "g")])


@pytest.mark.parametrize("command", ["train", "pipeline", "taxonomy", "transfer"])
def test_user_errors_are_one_line_and_bugs_keep_their_traceback(command, monkeypatch, capsys,
                                                               results_dir, tmp_path):
    for exc in (InputError("bad --thing: expected a number"),
                UnknownNameError("unknown task 'x'; valid tasks: ...")):
        assert _call(command, exc, monkeypatch, results_dir, tmp_path) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert "\"unknown task" not in err  # no KeyError quotes
    for bug in (ValueError("Input 0 of layer 'conv' is incompatible"), KeyError("depth")):
        with pytest.raises(type(bug)):
            _call(command, bug, monkeypatch, results_dir, tmp_path)


def test_the_project_errors_are_user_errors():
    from taskonomy_tf.pipeline import PipelineError
    from taskonomy_tf.taxonomy import TableError, TaxonomyError
    from taskonomy_tf.training import TrainingError
    from tfrecords_tools.convert import ConvertError

    for cls in (PipelineError, TableError, TaxonomyError, TrainingError, ConvertError):
        assert issubclass(cls, UserError), cls
    # callers that catch the built-in types still do
    assert issubclass(InputError, ValueError) and issubclass(UnknownNameError, KeyError)


def test_a_pipeline_stage_bug_propagates_and_bad_input_is_one_line(monkeypatch, tmp_path):
    import taskonomy_tf.pipeline.run as run
    from taskonomy_tf.config import quick_experiment
    from taskonomy_tf.pipeline import PipelineError

    cfg = quick_experiment()
    monkeypatch.setattr(run, "STAGES", [("data", _raiser(InputError("no shards")))])
    with pytest.raises(PipelineError, match="stage 'data' failed: no shards"):
        run.run_pipeline(cfg, tmp_path / "a", progress=False)
    monkeypatch.setattr(run, "STAGES", [("data", _raiser(ValueError("a shape bug")))])
    with pytest.raises(ValueError, match="a shape bug") as info:
        run.run_pipeline(cfg, tmp_path / "b", progress=False)
    assert any("pipeline stage 'data'" in n for n in getattr(info.value, "__notes__", []))
