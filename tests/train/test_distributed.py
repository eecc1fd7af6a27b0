"""Data-parallel training: balanced parts, loss shares, reduced metrics, and `equidyn train`
under torchrun with 2 gloo processes against one process (same model, same metrics, resumable
across world sizes, SIGTERM saves once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import equidyn
from equidyn.data.builtin import builtin_dataset
from equidyn.train.checkpoint import load_checkpoint
from equidyn.train.cli import run_training
from equidyn.train.config import Config, TrainingConfig
from equidyn.train.distributed import (
    DistributedContext,
    balanced_partition,
    init_distributed,
    world_size_from_env,
)
from equidyn.train.logging import read_csv_log
from equidyn.train.potential_task import PotentialTask
from equidyn.train.task import RegressionTask
from equidyn.train.trainer import Trainer, build_potential

SRC = str(Path(equidyn.__file__).resolve().parents[1])  # the tree under test
MODEL = {"r_max": 3.5, "l_max": 1, "num_features": 4, "num_layers": 1, "num_basis": 4,
         "radial_hidden": 8}  # fmt: skip


# ---------------------------------------------------------------------- in one process
def test_balanced_partition_is_a_deterministic_balanced_partition():
    g = torch.Generator().manual_seed(0)
    for n, parts in [(0, 2), (1, 3), (7, 2), (13, 4), (40, 3)]:
        sizes = torch.randint(1, 60, (n,), generator=g).tolist()
        groups = balanced_partition(sizes, parts)
        assert len(groups) == parts
        assert sorted(i for grp in groups for i in grp) == list(range(n))
        assert groups == balanced_partition(sizes, parts)
        loads = [sum(sizes[i] for i in grp) for grp in groups]
        if n >= parts:
            assert all(grp for grp in groups)
            assert max(loads) - min(loads) <= max(sizes)
    with pytest.raises(ValueError, match="parts must be an int >= 1, got 0"):
        balanced_partition([1, 2], 0)
    with pytest.raises(ValueError, match="sizes must be numbers >= 0, got -1"):
        balanced_partition([1, -1], 2)


@pytest.fixture(scope="module")
def task_and_model(cache_dir):
    graphs = builtin_dataset(n_structures=16, seed=0, r_max=3.5, cache_dir=cache_dir)
    cfg = TrainingConfig(batch_size=5, dtype="float64", stress_weight=0.5, energy_weight=3.0)
    task = PotentialTask(graphs[:10], graphs[10:16], cfg)
    torch.manual_seed(0)
    model = build_potential("NequIP", MODEL, task.train_graphs).to(torch.float64)
    return task, model


def _grads(model, loss):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_loss_shares_add_up_to_the_loss_and_its_gradient(task_and_model, parts):
    task, model = task_and_model
    group = task.train_graphs[:5]
    split = task.split_batch(group, parts)
    assert sorted(id(g) for p in split for g in p) == sorted(id(g) for g in group)
    if parts == 7:
        assert sum(1 for p in split if not p) == 2  # empty parts still give a (zero) loss
    full, weight = task.loss(model, group)
    shares = [task.part_loss(model, p, group) for p in split]
    assert {w for _, w in shares} == {weight}
    total = sum(loss for loss, _ in shares)
    torch.testing.assert_close(total, full, rtol=1e-12, atol=0)
    for a, b in zip(_grads(model, full), _grads(model, total)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    assert task.compute_stress  # the stress term was part of the loss


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_evaluation_sums_of_all_ranks_give_the_metrics_of_the_split(task_and_model, world_size):
    task, model = task_and_model
    ref = task.evaluate(model, "val")
    sums: dict[str, float] = {}
    for rank in range(world_size):
        for k, v in task.evaluation_sums(model, "val", rank, world_size).items():
            sums[k] = sums.get(k, 0.0) + v
    got = task.metrics_from_sums(sums)
    assert got.keys() == ref.keys() and {"forces_mae", "stress_rmse"} <= set(got)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-12), k
    with pytest.raises(ValueError, match="no 'test' split"):
        task.evaluation_sums(model, "test", 0, world_size)


def test_one_process_uses_no_torch_distributed(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert world_size_from_env() == 1 and init_distributed() is None
    assert not torch.distributed.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"WORLD_SIZE=2 but \['RANK', 'LOCAL_RANK'"):
        init_distributed()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an int >= 1, got 'two'"):
        world_size_from_env()


class _OneProcessTask(RegressionTask):
    """A task written before data parallelism: the Task methods only."""

    split_batch = part_loss = evaluation_sums = metrics_from_sums = None  # type: ignore[assignment]


def test_a_task_that_cannot_be_split_is_refused_over_several_processes(tmp_path):
    x = torch.randn(8, 3)
    task = _OneProcessTask((x, x), (x, x), batch_size=4)
    cfg = TrainingConfig(output_dir=str(tmp_path), progress=False, log_epochs=False)
    ctx = DistributedContext(rank=0, world_size=2, local_rank=0, backend="gloo")
    with pytest.raises(TypeError, match=r"_OneProcessTask cannot be trained over 2 processes"):
        Trainer(torch.nn.Linear(3, 3), task, cfg, distributed=ctx)
    assert Trainer(torch.nn.Linear(3, 3), task, cfg).fit()["epochs"] == 100  # one process: fine


# ---------------------------------------------------------------------- under torchrun
def _config(cache_dir: Path, out: Path, epochs: int, schedule: str = "cosine") -> dict:
    return {
        "model_class": "NequIP",
        "model": MODEL,
        "data": {"source": "builtin:cuau-emt", "n_structures": 16, "n_train": 10, "n_val": 3,
                 "n_test": 3, "cache_dir": str(cache_dir)},
        "training": {"epochs": epochs, "batch_size": 4, "lr": 0.01, "dtype": "float64",
                     "output_dir": str(out), "progress": False, "plots": False,
                     "schedule": schedule, "max_grad_norm": 0.5, "ema_decay": 0.9,
                     "early_stopping_patience": None},
    }  # fmt: skip


def _torchrun(config: dict, path: Path, *args: str, wait: bool = True):
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=SRC + os.pathsep + env.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "equidyn", "train", str(path), *args]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def _assert_same_run(a: Path, b: Path, rtol: float = 1e-10):
    sa, sb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert list(sa["model"]) == list(sb["model"])  # no "module." prefix
    for key in ("epoch", "step_in_epoch", "global_step", "best_epoch"):
        assert sa[key] == sb[key], key
    pairs = list(zip(sa["model"].values(), sb["model"].values()))
    pairs += list(zip(sa["ema"]["shadow"], sb["ema"]["shadow"]))
    pairs += [(x["exp_avg_sq"], sb["optimizer"]["state"][i]["exp_avg_sq"])
              for i, x in sa["optimizer"]["state"].items()]  # fmt: skip
    for x, y in pairs:
        torch.testing.assert_close(x, y, rtol=rtol, atol=1e-14)
    rows_a, rows_b = read_csv_log(a / "log.csv"), read_csv_log(b / "log.csv")
    assert len(rows_a) == len(rows_b) == sa["epoch"]
    for ra, rb in zip(rows_a, rows_b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if k != "time_s":
                assert ra[k] == pytest.approx(rb[k], rel=rtol), k


@pytest.fixture(scope="module")
def reference(cache_dir, tmp_path_factory):
    """One process, 3 epochs of 3 steps, and the same stopped after epoch 1."""
    out = tmp_path_factory.mktemp("ref")
    runs = {}
    for epochs in (3, 1):
        cfg = Config.from_dict(_config(cache_dir, out / f"e{epochs}", epochs))
        runs[epochs] = (out / f"e{epochs}", run_training(cfg, verbose=False)[1])
    return runs


def test_torchrun_resumes_one_process_and_trains_its_model(cache_dir, reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference[1][0], run)  # one process, stopped after epoch 1
    (run / "test_metrics.json").unlink()
    log = _torchrun(_config(cache_dir, run, 3), tmp_path / "c.yaml", "--resume")
    assert log.count("data parallel over 2 processes (gloo)") == 1  # rank 0 alone prints
    assert log.count("finished 3 epochs") == 1
    ref_dir, ref_metrics = reference[3]
    _assert_same_run(ref_dir, run)
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics.keys() == ref_metrics.keys()
    for k, v in ref_metrics.items():
        assert metrics[k] == (pytest.approx(v, rel=1e-10) if isinstance(v, float) else v), k
    written = sorted(p.name for p in run.iterdir())
    assert written == ["checkpoint.pt", "config.yaml", "log.csv", "model.pt", "test_metrics.json"]


def test_sigterm_stops_every_rank_at_one_step_and_one_process_resumes(cache_dir, tmp_path):
    run = tmp_path / "run"
    config = _config(cache_dir, run, 500, schedule="constant")  # the epoch budget changes
    proc = _torchrun(config, tmp_path / "c.yaml", wait=False)
    deadline = time.monotonic() + 90
    while not (run / "checkpoint.pt").is_file() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint after 90 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both workers
    out, _ = proc.communicate(timeout=60)
    assert out.count("resume with --resume") == 1, out  # rank 0 alone reports
    assert out.count("data parallel over 2 processes (gloo)") == 1
    state = load_checkpoint(run / "checkpoint.pt")
    stopped = (state["epoch"], state["step_in_epoch"])
    assert stopped[0] < 500 and state["global_step"] == 3 * stopped[0] + stopped[1]
    # resume in one process to the end of the next epoch; compare with one uninterrupted process
    end = stopped[0] + 1
    cfg = Config.from_dict(config)
    cfg.training.epochs = end
    run_training(cfg, resume=True, verbose=False)
    ref = Config.from_dict(_config(cache_dir, tmp_path / "ref", 500, schedule="constant"))
    ref.training.epochs = end
    run_training(ref, verbose=False)
    _assert_same_run(tmp_path / "ref", run)


def test_the_cosine_schedule_of_the_reference_changes_the_lr(reference):
    rows = read_csv_log(reference[3][0] / "log.csv")
    assert rows[0]["lr"] > rows[1]["lr"] > rows[2]["lr"]  # the compared runs follow a schedule


_SCRIPT = """
import sys, torch
from equidyn.train.distributed import init_distributed
from equidyn.train.config import TrainingConfig
from equidyn.train.task import RegressionTask
from equidyn.train.trainer import Trainer
from equidyn.train.forecast_task import train_forecaster
from equidyn.data import Trajectory, TrajectoryWindows
from equidyn.models import ESTAG

ctx = init_distributed()
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
x = torch.randn(22, 3, generator=g, dtype=torch.float64)
task = RegressionTask((x, x.flip(-1) ** 2), (x[:5], x[:5].flip(-1) ** 2), batch_size=8)
cfg = TrainingConfig(epochs=3, lr=0.05, ema_decay=0.9, schedule="cosine", max_grad_norm=0.3,
                     output_dir=out + "/regression", progress=False, log_epochs=False)
torch.manual_seed(ctx.rank if ctx else 0)  # rank 0's weights reach the others
model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
Trainer(model, task, cfg).fit()
# a stop requested on the last rank only: every rank stops after the same step
cfg.output_dir = out + "/stopped"
stop_on = 0 if ctx is None else ctx.world_size - 1
wants = lambda trainer, step: trainer.request_stop() if step == 2 and (  # noqa: E731
    ctx is None or ctx.rank == stop_on) else None
stopped = Trainer(model, task, cfg, step_callback=wants).fit()
t = torch.linspace(0, 6, 40, dtype=torch.float64)[:, None, None]
traj = Trajectory(torch.cat([t.sin(), t.cos(), 0 * t], -1).expand(40, 3, 3) * torch.tensor(
    [[1.0], [2.0], [3.0]], dtype=torch.float64), torch.eye(3, dtype=torch.float64))
windows = TrajectoryWindows([traj], window=4)
torch.manual_seed(0)
estag = ESTAG(window=4, num_features=8, num_layers=1, node_attr_dim=3).double()
result = train_forecaster(estag, windows, windows, epochs=2, out=out + "/forecast",
                          batch_size=7, progress=False)
if ctx is None or ctx.is_main:
    torch.save({"regression": model.state_dict(), "forecast": estag.state_dict(),
                "best_valid": result["best_valid"], "stopped": stopped}, out + "/weights.pt")
else:
    assert stopped["steps"] == 2, stopped
"""


def test_any_sharded_task_trains_under_torchrun_like_in_one_process(tmp_path, monkeypatch):
    import runpy

    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=SRC + os.pathsep + env.get("PYTHONPATH", ""))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(script), str(tmp_path / "two")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path / "one")])
    runpy.run_path(str(script), run_name="__main__")  # one process, meanwhile
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    one, two = (torch.load(tmp_path / d / "weights.pt") for d in ("one", "two"))
    assert two["best_valid"] == pytest.approx(one["best_valid"], rel=1e-10)
    assert one["stopped"]["steps"] == two["stopped"]["steps"] == 2
    assert two["stopped"]["stop_reason"].startswith("interrupted in epoch 1 after step 2")
    for part in ("regression", "forecast"):
        for k, v in one[part].items():
            torch.testing.assert_close(two[part][k], v, rtol=1e-10, atol=1e-14, msg=k)
