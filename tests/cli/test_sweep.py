import json

from click.testing import CliRunner

from paramviz.cli import main


def test_list_prints_every_arm(basic_sweep):
    result = CliRunner().invoke(main, ["sweep", "list", str(basic_sweep)])
    assert result.exit_code == 0, result.output
    assert "4 arms, task visualize" in result.output and "fourier" in result.output


def test_run_writes_the_sweep_and_says_how_to_report(basic_sweep, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "4 of 4 arms done" in result.output and "paramviz sweep report" in result.output
    assert json.loads((out / "arms.json").read_text())["counts"]["done"] == 4


def test_a_bad_sweep_file_is_one_line_without_traceback(write_sweep, tmp_path):
    path = write_sweep('task = "visualize"\n[axes]\nseed = 3\n')
    result = CliRunner().invoke(main, ["sweep", "run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "axis 'seed': expected a list" in result.output
    assert not (tmp_path / "o").exists()


def test_ray_flags_become_the_runner_options(basic_sweep, tmp_path, monkeypatch):
    import paramviz.cli.sweep as cli_sweep
    from paramviz.sweep.ray_runner import RayOptions
    from paramviz.sweep.runner import SweepSummary

    calls = []

    def fake_run_sweep(spec, out, **kwargs):
        calls.append(kwargs)
        return SweepSummary(out, [])

    monkeypatch.setattr(cli_sweep, "run_sweep", fake_run_sweep)
    args = ["sweep", "run", str(basic_sweep), "--out", str(tmp_path / "o"), "--runner", "ray", "-q"]
    result = CliRunner().invoke(main, [*args, "--address", "auto", "--cpus-per-arm", "2", "--gpus-per-arm", "0.25"])
    assert result.exit_code == 0, result.output
    assert calls[-1]["runner"] == "ray" and calls[-1]["step_callbacks"] == []  # no steps come back from workers
    assert calls[-1]["runner_options"] == RayOptions(address="auto", cpus_per_arm=2.0, gpus_per_arm=0.25)
    result = CliRunner().invoke(main, args)
    assert calls[-1]["runner_options"] == RayOptions()  # the defaults come from RayOptions
    local = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(tmp_path / "o"), "-q"])
    assert local.exit_code == 0 and calls[-1]["runner"] == "local" and calls[-1]["runner_options"] is None
    assert len(calls[-1]["step_callbacks"]) == 1


def test_ray_flags_without_the_ray_runner_are_refused(basic_sweep, tmp_path):
    args = ["sweep", "run", str(basic_sweep), "--out", str(tmp_path / "o"), "--address", "auto", "--gpus-per-arm", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--address, --gpus-per-arm only apply to --runner ray" in result.output
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(main, [*args[:5], "--runner", "slurm"])
    assert result.exit_code != 0 and "'local'" in result.output and "'ray'" in result.output


def test_the_arms_bar_shows_arms_in_flight_of_a_remote_runner(basic_sweep):
    from paramviz.cli.progress import SweepProgress
    from paramviz.sweep.runner import SweepEvent
    from paramviz.sweep.spec import expand, load_sweep

    arms = expand(load_sweep(basic_sweep))
    progress = SweepProgress()  # bars on stderr (captured): a disabled tqdm counts nothing
    progress.on_sweep(SweepEvent(0, 0, 4, tuple(arms[:2]), in_flight=4))
    assert progress.arms.postfix == "in flight=4"
    progress.on_sweep(SweepEvent(2, 1, 4, (), in_flight=1))
    assert progress.arms.n == 3 and progress.arms.postfix == "failed=1, in flight=1" and progress.steps is None
    progress.on_sweep(SweepEvent(3, 1, 4, (), finished=True))
    assert progress.arms.postfix == "failed=1"
    progress.close()


def test_run_with_set_changes_the_base(basic_sweep, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(out), "--set", "steps=1", "-q"])
    assert result.exit_code == 0, result.output
    arm = json.loads((out / "arms.json").read_text())["arms"][0]["id"]
    assert json.loads((out / "arms" / arm / "metrics.json").read_text())["steps"] == 1
    bad = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(tmp_path / "o2"), "--set", "steps"])
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output and "Traceback" not in bad.output


def test_ctrl_c_says_what_was_kept_and_exits_130(basic_sweep, tmp_path, monkeypatch):
    import paramviz.cli.sweep as cli_sweep

    calls = []

    def interrupted(spec, out, **kwargs):
        from paramviz.sweep.runner import run_sweep

        def stop(record):
            calls.append(record.step)
            if len(calls) == 4 * 2 + 1:  # two arms of 4 steps done, then Ctrl-C
                raise KeyboardInterrupt

        return run_sweep(spec, out, **{**kwargs, "max_batch": 1, "step_callbacks": [stop]})

    monkeypatch.setattr(cli_sweep, "run_sweep", interrupted)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(out), "-q"])
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert f"interrupted: 2 of 4 arms done and kept in {out}; run the same command again" in result.output
