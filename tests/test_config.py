"""Tests of training.config: defaults, YAML files, dotted overrides, validation, round trip, data root."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from training.config import (
    Config,
    ConfigError,
    DataConfig,
    _coerce,
    apply_dict,
    build_config,
    from_dict,
    load_yaml,
    parse_overrides,
    resolve_data_root,
    set_value,
    to_dict,
    validate,
)

REPO = Path(__file__).resolve().parents[1]


def test_defaults_validate():
    cfg = Config()
    validate(cfg)
    assert cfg.train.encoder_epochs + cfg.train.gan_epochs <= 200
    assert cfg.train.gan_loss in ("hinge", "bce")
    assert (cfg.data.n_train_classes, cfg.data.n_test_classes, cfg.data.seed) == (20, 5, 0)
    assert build_config() == cfg


def test_experiment_files_load():
    files = sorted((REPO / "experiments").glob("*.yaml"))
    assert isinstance(files, list)
    for path in files:  # may be none yet; every one that exists must load and validate
        cfg = build_config(str(path))
        assert isinstance(cfg, Config)
        raw = load_yaml(path)
        for sec, values in raw.items():
            for key, value in (values or {}).items():
                got = getattr(getattr(cfg, sec), key)
                assert got == _coerce(f"{sec}.{key}", value, type(got)), f"{path.name}: {sec}.{key}"


def test_yaml_override_then_cli(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"data": {"seed": 5, "val_fraction": 0.2},
                                    "train": {"gan_loss": "bce", "lr_g": "3e-4", "gan_epochs": 100},
                                    "wandb": {"tags": "a,b"}}))
    cfg = build_config(str(path))
    assert (cfg.data.seed, cfg.data.val_fraction) == (5, 0.2)
    assert (cfg.train.gan_loss, cfg.train.lr_g, cfg.train.gan_epochs) == ("bce", 3e-4, 100)
    assert isinstance(cfg.train.lr_g, float) and cfg.wandb.tags == "a,b"
    assert cfg.train.lr_d == Config().train.lr_d  # untouched keys keep their defaults
    cfg = build_config(str(path), parse_overrides(["--data.seed=3", "--train.lr_g", "1e-4"]))
    assert cfg.data.seed == 3 and cfg.train.lr_g == 1e-4 and cfg.train.gan_loss == "bce"


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        build_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr_gg: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*train\.lr_gg"):
        build_config(str(bad))
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        build_config(str(bad))
    bad.write_text("train: 3\n")
    with pytest.raises(ConfigError, match="section 'train'"):
        build_config(str(bad))


def test_parse_overrides_forms():
    assert parse_overrides(["--data.seed=3", "--train.lr_g", "1e-4", "--run.name=a=b"]) == {
        "data.seed": "3", "train.lr_g": "1e-4", "run.name": "a=b"}
    assert parse_overrides(["--data.seed", "-2"]) == {"data.seed": "-2"}
    cfg = build_config(overrides=parse_overrides(["--data.seed=3", "--train.lr_g", "1e-4"]))
    assert cfg.data.seed == 3 and isinstance(cfg.data.seed, int)
    assert cfg.train.lr_g == 1e-4 and isinstance(cfg.train.lr_g, float)
    with pytest.raises(ConfigError, match="--train.lr_g"):
        parse_overrides(["--train.lr_g"])
    with pytest.raises(ConfigError, match="seed"):
        parse_overrides(["--seed=3"])
    with pytest.raises(ConfigError, match="data.seed"):
        parse_overrides(["data.seed=3"])


@pytest.mark.parametrize("value,expected", [
    ("true", True), ("false", False), ("1", True), ("0", False), ("True", True), ("FALSE", False),
    ("yes", True), ("no", False), (True, True), (False, False), (1, True), (0, False),
])
def test_coerce_bool(value, expected):
    assert _coerce("x.flag", value, bool) is expected


@pytest.mark.parametrize("value", ["maybe", "2", 2, None, 1.0])
def test_coerce_bool_rejects(value):
    with pytest.raises(ConfigError, match="x.flag"):
        _coerce("x.flag", value, bool)


def test_coerce_numbers_and_strings():
    assert _coerce("k", "3", int) == 3 and _coerce("k", 4.0, int) == 4
    assert _coerce("k", "1e-4", float) == 1e-4 and _coerce("k", 2, float) == 2.0
    assert _coerce("k", 5, str) == "5" and _coerce("k", None, str) == ""
    for value, typ in ((True, int), ("1.5", int), (2.5, int), (True, float), ("fast", float), (True, str),
                       ([1], str)):
        with pytest.raises(ConfigError, match="'k'"):
            _coerce("k", value, typ)


@pytest.mark.parametrize("arg,key", [
    ("--nosuch.seed=1", "nosuch.seed"),
    ("--data.nosuch=1", "data.nosuch"),
    ("--data.seed=abc", "data.seed"),
    ("--train.lr_g=fast", "train.lr_g"),
    ("--train.gan_epochs=1.5", "train.gan_epochs"),
])
def test_bad_overrides_name_the_key(arg, key):
    with pytest.raises(ConfigError) as err:
        build_config(overrides=parse_overrides([arg]))
    assert f"'{key}'" in str(err.value)


def test_set_value_rejects_deep_keys():
    with pytest.raises(ConfigError, match="data.seed.x"):
        set_value(Config(), "data.seed.x", 1)


def test_validate_rejects():
    cfg = build_config(overrides={"train.encoder_epochs": 100, "train.gan_epochs": 100})  # exactly 200 is fine
    assert cfg.train.encoder_epochs + cfg.train.gan_epochs == 200
    with pytest.raises(ConfigError, match="200"):
        build_config(overrides={"train.encoder_epochs": 100, "train.gan_epochs": 101})
    with pytest.raises(ConfigError, match="train.gan_loss"):
        build_config(overrides={"train.gan_loss": "wgan"})
    with pytest.raises(ConfigError, match="wandb.mode"):
        build_config(overrides={"wandb.mode": "sometimes"})
    with pytest.raises(ConfigError, match="data.val_fraction"):
        build_config(overrides={"data.val_fraction": 1.0})
    with pytest.raises(ConfigError, match="102"):
        build_config(overrides={"data.n_train_classes": 100, "data.n_test_classes": 5})
    assert build_config(overrides={"eval.truncation": 0}).eval.truncation == 0.0  # both ends of [0, 1] are fine
    for bad in (1.5, -0.1):
        with pytest.raises(ConfigError, match=r"eval\.truncation.*\[0, 1\]"):
            build_config(overrides={"eval.truncation": bad})


def test_to_dict_from_dict_round_trip(tmp_path):
    cfg = build_config(overrides={"data.seed": 7, "train.lr_g": 1e-4, "train.gan_loss": "bce",
                                  "run.name": "abc", "model.g_ratio": 0.25, "data.limit_per_class": 3})
    d = to_dict(cfg)
    assert d["data"]["seed"] == 7 and d["train"]["gan_loss"] == "bce"
    assert set(d) == {f.name for f in dataclasses.fields(Config)}
    assert from_dict(d) == cfg
    path = tmp_path / "config.yaml"  # as a run directory stores it
    path.write_text(yaml.safe_dump(d))
    assert from_dict(load_yaml(path)) == cfg
    assert from_dict(d) != Config()
    d["data"]["bogus"] = 1
    with pytest.raises(ConfigError, match="data.bogus"):
        from_dict(d)


def test_saved_configs_with_retired_keys_still_load():
    """Run directories and checkpoints of older versions hold eval.fid_samples; only new input rejects it."""
    d = to_dict(build_config(overrides={"eval.knn_k": 7}))
    d["eval"]["fid_samples"] = 500
    assert from_dict(d) == build_config(overrides={"eval.knn_k": 7})
    with pytest.raises(ConfigError, match="eval.fid_samples"):
        build_config(overrides={"eval.fid_samples": 500})
    with pytest.raises(ConfigError, match="eval.fid_samples"):
        apply_dict(Config(), {"eval": {"fid_samples": 500}}, source="experiments/x.yaml")


def test_apply_dict_rejects_non_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        apply_dict(Config(), [1, 2])


def test_resolve_data_root(tmp_path, monkeypatch):
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("OXFORD102_DIR", str(env))
    assert resolve_data_root(str(explicit)) == explicit  # explicit beats the environment
    assert resolve_data_root("") == env
    assert resolve_data_root() == env

    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        resolve_data_root(str(missing))
    monkeypatch.setenv("OXFORD102_DIR", str(missing))
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        resolve_data_root("")

    # no explicit value, no environment: ../shared/data/oxford102 relative to the working directory
    monkeypatch.delenv("OXFORD102_DIR")
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(FileNotFoundError, match="OXFORD102_DIR"):
        resolve_data_root("")
    (tmp_path / "shared/data/oxford102").mkdir(parents=True)
    assert resolve_data_root("").resolve() == (tmp_path / "shared/data/oxford102").resolve()


def test_data_config_is_what_load_data_reads():
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    assert {"cache", "seed", "n_train_classes", "n_test_classes", "val_fraction", "max_caption_len",
            "min_word_count", "limit_per_class"} <= fields
