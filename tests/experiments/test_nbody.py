"""``equidyn nbody`` (src/equidyn/experiments/): a tiny run, resume, outputs."""

from __future__ import annotations

import json

import pytest
import torch

from equidyn.dynamics import data as nbody_data
from equidyn.experiments.nbody import main
from equidyn.experiments.nbody_models import build_model
from equidyn.experiments.nbody_task import equivariance_mse
from equidyn.experiments.nbody_task import train as nb_train
from equidyn.models import ParticleSystem


@pytest.fixture
def tiny_splits(monkeypatch):
    for split, offset in (("train", 0), ("valid", 1), ("test", 2)):
        monkeypatch.setitem(nbody_data.SPLITS, split, (6, offset, 4200))


def test_train_resume_and_outputs(tiny_splits, tmp_path, capsys):
    out = tmp_path / "run"
    base = [
        "--model",
        "egnn_vel",
        "--hidden",
        "8",
        "--layers",
        "1",
        "--n-train",
        "6",
        "--n-valid",
        "6",
        "--n-test",
        "6",
        "--cache",
        str(tmp_path),
        "--out",
        str(out),
    ]
    assert main([*base, "--epochs", "1", "--no-plot"]) == 0
    assert main([*base, "--epochs", "2"]) == 0
    assert "resuming" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 2 and result["equivariance_mse"] < 1e-10
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3
    assert (out / "trajectories.png").stat().st_size > 0
    assert main([*base, "--epochs", "3", "--lr", "1e-3", "--no-plot"]) == 1
    assert "different configuration" in capsys.readouterr().err


def test_models_and_errors(capsys):
    with pytest.raises(ValueError, match="unknown model"):
        build_model("egnn2")
    assert main(["--model", "gnn", "--task", "rollout"]) == 1
    assert "--task rollout" in capsys.readouterr().err
    # the GNN is measurably not equivariant, EGNN is

    class Split:  # the attributes equivariance_mse reads from a ChargedNBodyDataset
        g = torch.Generator().manual_seed(0)
        pos, vel = torch.randn(20, 5, 3, generator=g), torch.randn(20, 5, 3, generator=g)
        charges = torch.ones(20, 5, 1)

        def __len__(self):
            return 20

    torch.manual_seed(0)
    gnn = build_model("gnn", 8, 1)
    egnn = build_model("egnn_vel", 8, 1)
    node, edge = egnn.inputs(ParticleSystem(Split.pos, Split.vel, Split.charges))
    assert node.shape == (20, 5, 0) and edge.shape == (20, 5, 5, 2)
    assert equivariance_mse(gnn, Split()) > 1e-6
    assert equivariance_mse(egnn, Split()) < 1e-10


def test_unrolled_rollout_training(tiny_splits, tmp_path, capsys):
    out = tmp_path / "roll"
    args = ["--model", "egnn_vel", "--task", "rollout", "--unroll", "2", "--hidden", "8"]
    args += ["--layers", "1", "--n-train", "2", "--n-valid", "6", "--n-test", "6", "--epochs"]
    args += ["1", "--cache", str(tmp_path), "--out", str(out), "--no-plot"]
    import equidyn.experiments.nbody_task as nb

    calls = []
    real = nb._predict_state

    def counting(*a):
        calls.append(1)
        return real(*a)

    nb._predict_state = counting
    try:
        nb.train(*_rollout_parts(tmp_path), epochs=1, out=out, state_loss=True, unroll=2)
    finally:
        nb._predict_state = real
    assert len(calls) > 0 and len(calls) % 2 == 0  # two chained predictions per batch
    assert main([*args, "--fresh"]) == 0 and (out / "result.json").exists()
    assert main([a for a in args if a not in ("--task", "rollout")]) == 1
    assert "--unroll 2 needs --task rollout" in capsys.readouterr().err


def _rollout_parts(tmp_path):
    from equidyn.dynamics.data import ChargedNBodyDataset
    from equidyn.models import EGNN

    torch.manual_seed(0)
    model = EGNN(8, 1, 0, 2, predict_velocity=True)
    train = ChargedNBodyDataset("train", 2, all_starts=True, unroll=2, cache=tmp_path)
    valid = ChargedNBodyDataset("valid", 6, cache=tmp_path)
    test = ChargedNBodyDataset("test", 6, cache=tmp_path)
    return model, train, valid, test


def test_trimmed_loss_and_pair_ode_model(tiny_splits, tmp_path):
    model = build_model("pair_ode", 8, 1)
    assert model.method == "semi_implicit_euler" and model.field.kind == "acceleration"
    from equidyn.dynamics.data import ChargedNBodyDataset

    train_ds = ChargedNBodyDataset("train", 6, cache=tmp_path)
    valid = ChargedNBodyDataset("valid", 6, cache=tmp_path)
    model.compile = False  # eager here; the compiled loop is tested in test_neural_ode
    model.step_size = 0.1
    state = nb_train(model, train_ds, valid, valid, epochs=1, out=tmp_path / "t", trim=0.5)
    assert state["epoch"] == 1 and state["best_valid"] < 1.0
    with pytest.raises(ValueError, match="trim must be in"):
        nb_train(model, train_ds, valid, valid, epochs=1, out=tmp_path / "u", trim=0.0)


def test_init_from_and_softening(tiny_splits, tmp_path, capsys):
    base = ["--model", "pair_ode", "--hidden", "8", "--layers", "1", "--n-train", "6"]
    base += ["--n-valid", "6", "--n-test", "6", "--epochs", "1", "--ode-steps", "20"]
    base += ["--cache", str(tmp_path), "--no-plot", "--no-compile"]
    first = tmp_path / "first"
    assert main([*base, "--out", str(first)]) == 0
    second = tmp_path / "second"  # lr 0: the weights stay those of the first run's best model
    args = [*base, "--out", str(second), "--init-from", str(first / "checkpoint.pt")]
    assert main([*args, "--lr", "0", "--softening", "0.2"]) == 0
    r1 = json.loads((first / "result.json").read_text())
    r2 = json.loads((second / "result.json").read_text())
    assert r2["test_mse"] == pytest.approx(r1["test_mse"], rel=1e-5)
    assert main(["--model", "egnn_vel", "--softening", "0.1", "--out", str(tmp_path / "x")]) == 1
    assert "--softening needs the pair_ode model" in capsys.readouterr().err


def test_ctrl_c_mid_epoch_resumes_exactly(tiny_splits, tmp_path, capsys):
    import os
    import signal

    from equidyn.dynamics.data import ChargedNBodyDataset

    def run(out, **kw):
        torch.manual_seed(0)
        model = build_model("egnn_vel", 8, 1)
        splits = [ChargedNBodyDataset(s, 6, cache=tmp_path) for s in ("train", "valid", "test")]
        kw = {"epochs": 2, "out": out, "augment": True, "batch_size": 2, "config": {"a": 1}, **kw}
        return model, nb_train(model, *splits, **kw)

    ref_model, ref = run(tmp_path / "ref")
    ctrl_c = lambda trainer, step: os.kill(os.getpid(), signal.SIGINT) if step == 4 else None
    with pytest.raises(KeyboardInterrupt):  # in epoch 2 (3 steps per epoch), after step 1
        run(tmp_path / "run", step_callback=ctrl_c)
    assert "interrupted: checkpoint saved" in capsys.readouterr().err
    with pytest.raises(ValueError, match="different configuration"):
        run(tmp_path / "run", config={"a": 2})
    model, state = run(tmp_path / "run")
    assert "resuming from" in capsys.readouterr().out
    timeless = lambda s: {k: v for k, v in s.items() if k != "train_seconds"}
    assert timeless(state) == timeless(ref)
    for a, b in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    log = lambda d: (d / "log.csv").read_text().splitlines()
    strip = lambda rows: [",".join(r.split(",")[:4]) for r in rows]  # no timings
    assert strip(log(tmp_path / "ref")) == strip(log(tmp_path / "run"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-valid", "0"], "--n-valid must be >= 1, got 0"),
        (["--epochs", "-3"], "--epochs must be >= 1, got -3"),
        (["--model", "egnn", "--task", "rollout"], "--task rollout needs a model"),
    ],
)
def test_bad_settings_are_one_clear_line(argv, message, capsys):
    """Issue 12: `equidyn nbody` printed raw tracebacks; now the style of the other commands."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("equidyn nbody: error: ") and message in err and "Traceback" not in err


def test_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--model", "nonexistent"])
    assert e.value.code == 2 and "invalid choice: 'nonexistent'" in capsys.readouterr().err
