"""Tests of core.config: defaults, YAML files, dotted overrides, validation, round trip, data root."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from core.config import (
    REMOVED_IN,
    REMOVED_KEYS,
    REMOVED_TABLE,
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
                                    "train": {"diffaug": "color", "lr_g": "3e-4", "gan_epochs": 100},
                                    "wandb": {"tags": "a,b"}}))
    cfg = build_config(str(path))
    assert (cfg.data.seed, cfg.data.val_fraction) == (5, 0.2)
    assert (cfg.train.diffaug, cfg.train.lr_g, cfg.train.gan_epochs) == ("color", 3e-4, 100)
    assert isinstance(cfg.train.lr_g, float) and cfg.wandb.tags == "a,b"
    assert cfg.train.lr_d == Config().train.lr_d  # untouched keys keep their defaults
    cfg = build_config(str(path), parse_overrides(["--data.seed=3", "--train.lr_g", "1e-4"]))
    assert cfg.data.seed == 3 and cfg.train.lr_g == 1e-4 and cfg.train.diffaug == "color"


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
    with pytest.raises(ConfigError, match="train.diffaug"):
        build_config(overrides={"train.diffaug": "color,blur"})
    with pytest.raises(ConfigError, match="model.g_upsample"):
        build_config(overrides={"model.g_upsample": "subpixel"})
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
    cfg = build_config(overrides={"data.seed": 7, "train.lr_g": 1e-4, "train.diffaug": "color",
                                  "run.name": "abc", "model.g_ratio": 0.25, "data.limit_per_class": 3})
    d = to_dict(cfg)
    assert d["data"]["seed"] == 7 and d["train"]["diffaug"] == "color"
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


@pytest.mark.parametrize("key,value", [
    ("model.g_noise", "true"), ("model.g_noise", "false"), ("model.g_skip", "false"), ("model.g_cond_norm", "true"),
    ("model.d_patch", "false"), ("train.gan_loss", "hinge"), ("train.gan_loss", "bce"), ("train.distill_aug", ""),
    ("train.view_scale_min", "0.5"), ("train.view_jitter", "0"), ("train.local_crops", "2"),
    ("train.local_size", "32"), ("train.mix_weight", "0.5"), ("train.mix_alpha", "1"), ("train.text_rep_prob", "1"),
    ("train.text_rep_prob", "0.5"),
])
def test_removed_keys_in_overrides_fail_naming_the_key(key, value):
    """New input (command line, YAML) naming a removed option fails, even at its old default, naming the key."""
    with pytest.raises(ConfigError, match=rf"'{re.escape(key)}'.*was removed.*commit {REMOVED_IN[key]}"):
        build_config(overrides=parse_overrides([f"--{key}={value}"]))
    sec, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"x\.yaml.*'{re.escape(key)}'.*was removed"):
        apply_dict(Config(), {sec: {name: value}}, source="experiments/x.yaml")


def test_removed_keys_in_yaml_fail_naming_the_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"model": {"g_noise": False}, "train": {"lr_g": 1e-4}}))
    with pytest.raises(ConfigError, match=r"exp\.yaml.*'model\.g_noise'.*was removed"):
        build_config(str(path))


def test_removed_keys_at_their_old_default_are_dropped_from_saved_configs(tmp_path):
    """Checkpoints and run folders of older versions hold the removed options at their "off" value: they load."""
    want = build_config(overrides={"eval.knn_k": 7, "train.lr_g": 1e-4})
    d = to_dict(want)
    d["model"].update(g_noise=False, g_skip=False, g_cond_norm=True, d_patch=False)
    d["train"].update(gan_loss="hinge", distill_aug="", view_scale_min=1.0, view_jitter=0.0, mix_weight=0.0,
                      mix_alpha=1.0, local_crops=0, local_size=32, text_rep_prob=1.0)
    assert from_dict(d) == want
    path = tmp_path / "config.yaml"  # as a run directory stores it
    path.write_text(yaml.safe_dump(d))
    assert from_dict(load_yaml(path)) == want
    assert {f"model.{k}" for k in ("g_noise", "g_skip", "g_cond_norm", "d_patch")} <= set(REMOVED_KEYS)


@pytest.mark.parametrize("key,value", [
    ("model.g_noise", True), ("model.g_skip", True), ("model.g_cond_norm", False), ("model.d_patch", True),
    ("train.gan_loss", "bce"), ("train.distill_aug", "color"), ("train.view_scale_min", 0.5),
    ("train.view_jitter", 0.4), ("train.mix_weight", 0.5), ("train.local_crops", 2), ("train.text_rep_prob", 0.5),
])
def test_removed_keys_at_another_value_fail_in_saved_configs(key, value):
    """A saved config that used a removed option cannot be rebuilt faithfully: a ConfigError naming the key."""
    d = to_dict(Config())
    sec, name = key.split(".")
    d["model"]["g_noise"] = False  # others at their old default do not mask the one that is on
    d["train"]["gan_loss"] = "hinge"
    d[sec][name] = value
    with pytest.raises(ConfigError, match=rf"'{re.escape(key)}'.*was removed.*commit {REMOVED_IN[key]}"):
        from_dict(d)


@pytest.mark.parametrize("key,value,commit", [
    ("train.bcr_weight", 1.0, "cf49ec7"), ("train.ms_weight", 0.1, "086abd9"),
    ("model.d_words", True, "54cabef"), ("train.word_weight", 0.5, "54cabef"), ("train.neighbour_k", 5, "73a0645"),
    ("train.fm_weight", 10.0, "b417dbe"), ("model.arch", "resnet", "3bf5262"), ("model.g_z_norm", True, "3bf5262"),
    ("model.enc_top_width", 640, "3bf5262"),
])
def test_later_removed_keys_name_the_commit_that_has_their_code(key, value, commit):
    """On the command line a key removed later names the commit that last had it; at its off value
    in a saved config it is dropped."""
    with pytest.raises(ConfigError, match=rf"'{re.escape(key)}'.*was removed.*commit {commit}"):
        build_config(overrides={key: value})
    d = to_dict(Config())
    sec, name = key.split(".")
    d[sec][name] = REMOVED_KEYS[key]
    assert from_dict(d) == Config()


def test_removed_keys_come_from_one_table():
    """core/removed_keys.yaml is the one list: each row has the "off" value and a commit, no key is live again."""
    assert set(REMOVED_KEYS) == set(REMOVED_IN) == set(REMOVED_TABLE) and len(REMOVED_TABLE) >= 20
    live = {f"{sec}.{k}" for sec, values in to_dict(Config()).items() for k in values}
    assert not set(REMOVED_TABLE) & live
    assert all(set(row) == {"off_value", "commit"} and re.fullmatch(r"[0-9a-f]{7}", row["commit"])
               for row in REMOVED_TABLE.values())


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

    # no explicit value, no environment: data/oxford102 relative to the working directory
    monkeypatch.delenv("OXFORD102_DIR")
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(FileNotFoundError, match="OXFORD102_DIR"):
        resolve_data_root("")
    (work / "data/oxford102").mkdir(parents=True)
    assert resolve_data_root("").resolve() == (work / "data/oxford102").resolve()


def test_data_config_is_what_load_data_reads():
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    assert {"cache", "seed", "n_train_classes", "n_test_classes", "val_fraction", "max_caption_len",
            "min_word_count", "limit_per_class"} <= fields
