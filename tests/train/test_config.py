"""Config validation happens when the file is read, before any data loads (issue 12)."""

import pytest

from equidyn.train.config import Config, load_config


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("training", "batch_size", "four", r"training\.batch_size must be of type int, got 'four'"),
        ("training", "epochs", -3, r"training\.epochs must be an int >= 1, got -3"),
        ("training", "epochs", 2.5, "must be of type int"),
        ("training", "lr", 0, r"training\.lr must be a finite number > 0"),
        ("training", "ema_decay", 1.5, r"must be a number in \(0, 1\) or null"),
        ("training", "schedule", "linear", "plateau, constant or cosine"),
        ("training", "dtype", "float16", "float32 or float64"),
        ("training", "progress", "yes", "must be of type bool"),
        ("training", "max_time_s", True, "must be of type float or None"),
        ("data", "n_train", 0, r"data\.n_train must be a count"),
        ("data", "source", 3, "must be of type str"),
    ],
)
def test_bad_values_name_key_value_and_expectation(section, key, value, message):
    with pytest.raises(ValueError, match=message):
        Config.from_dict({section: {key: value}})


def test_good_values_pass_and_int_is_a_float():
    cfg = Config.from_dict({"training": {"lr": 1, "ema_decay": None}, "data": {"n_train": 0.5}})
    assert cfg.training.lr == 1 and cfg.training.ema_decay is None and cfg.data.n_train == 0.5


def test_sections_must_be_mappings_and_model_class_a_string():
    with pytest.raises(ValueError, match="section 'training' must be a mapping"):
        Config.from_dict({"training": [1, 2]})
    with pytest.raises(ValueError, match="model_class must be a model name"):
        Config.from_dict({"model_class": 3})


def test_empty_file_is_an_error_not_a_default_run(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(ValueError, match="is empty"):
        load_config(path)


def test_packaged_configs_are_valid():
    for name in ("quickstart", "nequip"):
        assert load_config(f"builtin:{name}").training.epochs >= 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_model_argument_is_refused_when_read(value: float) -> None:
    with pytest.raises(ValueError, match=r"model\.r_max must be a finite number"):
        Config.from_dict({"model": {"r_max": value}})
