"""``equidyn quickstart --quick`` runs end to end and writes what it says it writes."""

from __future__ import annotations

import pytest

from equidyn.train.quickstart import main


def test_quickstart_quick(tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("EQUIDYN_CACHE", str(cache_dir))
    out = tmp_path / "qs"
    assert main(["--quick", "--output-dir", str(out), "--no-progress", "--md-steps", "10"]) == 0
    text = capsys.readouterr().out
    assert "test energy MAE" in text and "NVE drift" in text
    for name in ("model.pt", "log.csv", "plots/loss.png", "plots/force_parity.png", "md.traj",
                 "test_metrics.json", "config.yaml"):  # fmt: skip
        assert (out / name).is_file(), name
        assert name in text or name == "config.yaml"


def test_quickstart_config_is_packaged():
    from equidyn.train.config import load_config

    cfg = load_config("builtin:quickstart")
    assert cfg.model_class == "NequIP" and cfg.model["l_max"] >= 1
    with pytest.raises(FileNotFoundError, match="no packaged config"):
        load_config("builtin:does-not-exist")
