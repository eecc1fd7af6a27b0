"""The forecasting task on the one trainer (src/equidyn/train/forecast_task.py)."""

from __future__ import annotations

import pytest
import torch

from equidyn.data import Trajectory, TrajectoryWindows
from equidyn.dynamics import charged_nbody_trajectories
from equidyn.models import EGNN, ESTAG, LinearExtrapolation
from equidyn.train import ForecastTask, forecast_mse, train_forecaster
from equidyn.train.logging import read_csv_log


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    trajs = charged_nbody_trajectories("valid", 12, cache=tmp_path_factory.mktemp("nbody"))
    make = lambda ts: TrajectoryWindows(ts, window=4, spacing=2, horizon=4, stride=3)
    return make(trajs[:8]), make(trajs[8:10]), make(trajs[10:])


def test_training_selects_the_best_epoch_and_resumes(windows, tmp_path):
    train, val, test = windows
    torch.manual_seed(0)
    model = ESTAG(4, 16, 1, node_attr_dim=1, edge_attr_dim=1)
    before = forecast_mse(model, test)
    result = train_forecaster(model, train, val, test, epochs=3, out=tmp_path, batch_size=32,
                              lr=3e-3, progress=False)  # fmt: skip
    assert result["epoch"] == 3 and result["best_test"] < before
    assert forecast_mse(model, test) == pytest.approx(result["best_test"], rel=1e-6)
    rows = read_csv_log(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert result["best_epoch"] == min(rows, key=lambda r: r["val_mse"])["epoch"]
    # a longer budget continues the run from its checkpoint instead of starting over
    more = train_forecaster(model, train, val, test, epochs=5, out=tmp_path, batch_size=32,
                            lr=3e-3, progress=False)  # fmt: skip
    assert more["epoch"] == 5
    assert [r["epoch"] for r in read_csv_log(tmp_path / "log.csv")] == [1, 2, 3, 4, 5]


def test_the_task_checks_its_model_and_splits(windows):
    train, val, test = windows
    task = ForecastTask(train, val, test)
    with pytest.raises(TypeError, match="trains a ForecastModel, got EGNN"):
        task.evaluate(EGNN(8, 1), "val")
    with pytest.raises(ValueError, match="unknown split 'train2'"):
        task.evaluate(LinearExtrapolation(4), "train2")
    same_layout = Trajectory(torch.randn(20, 5, 3), torch.ones(5, 1), torch.ones(5, 5, 1))
    other = TrajectoryWindows([same_layout], window=3)  # only the window differs
    with pytest.raises(ValueError, match="the splits need the same"):
        ForecastTask(train, other)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        ForecastTask(train, val, batch_size=0)


def test_linear_extrapolation_mse_by_hand(windows):
    _, val, _ = windows
    b = val.batch(torch.arange(len(val)))
    last, prev = b["pos_window"][:, -1], b["pos_window"][:, -2]
    by_hand = float(((last + 2.0 * (last - prev) - b["target"]) ** 2).mean())
    assert forecast_mse(LinearExtrapolation(4, 2.0, 1, 1), val) == pytest.approx(by_hand)
