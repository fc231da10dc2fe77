"""Typed configuration: dataclass defaults <- experiments/*.yaml <- dotted command-line overrides.

    python run_experiment.py --config experiments/quick.yaml --train.gan_epochs=20 --data.seed=3

Unknown keys and values of the wrong type are rejected with the dotted key named, so a typo in a
YAML file or a sweep never silently runs the default. Booleans parse `true/false/1/0/yes/no`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from .schema import (DEFAULT_DATA_DIRS, Config, DataConfig, EvalConfig, ModelConfig, RunConfig,  # noqa: F401
                     TrainConfig, WandbConfig)


class ConfigError(ValueError):
    """A config file or override names an unknown key or a value of the wrong type."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce(key: str, value: Any, typ: type) -> Any:
    """Convert `value` (from YAML or the command line) to `typ`, or raise naming `key`."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if value is None:
            return ""
    raise ConfigError(f"config key '{key}' expects {typ.__name__}, got {value!r}")


def _section_types(cfg: Config) -> dict[str, dict[str, type]]:
    out = {}
    for sec in dataclasses.fields(cfg):
        hints = typing.get_type_hints(type(getattr(cfg, sec.name)))
        out[sec.name] = {f.name: hints[f.name] for f in dataclasses.fields(getattr(cfg, sec.name))}
    return out


def set_value(cfg: Config, dotted: str, value: Any) -> None:
    """Set `section.key` on `cfg`, converting and checking the type."""
    types = _section_types(cfg)
    parts = dotted.split(".")
    if len(parts) != 2 or parts[0] not in types:
        raise ConfigError(f"unknown config key '{dotted}' (sections: {', '.join(types)})")
    sec, key = parts
    if dotted in REMOVED_KEYS:
        raise _removed_error(dotted)
    if key not in types[sec]:
        raise ConfigError(f"unknown config key '{dotted}' (known in '{sec}': {', '.join(types[sec])})")
    setattr(getattr(cfg, sec), key, _coerce(dotted, value, types[sec][key]))


def apply_dict(cfg: Config, overrides: dict, source: str = "overrides") -> None:
    """Apply a nested {section: {key: value}} dict (a YAML file's content)."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(overrides).__name__}")
    for sec, values in overrides.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section '{sec}' must be a mapping, got {values!r}")
        for key, value in values.items():
            try:
                set_value(cfg, f"{sec}.{key}", value)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:  # the first line of PyYAML's message and where it is ("line 3, column 5")
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{path}: malformed YAML{where} ({reason})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_overrides(args: list[str]) -> dict[str, str]:
    """['--train.lr_g=1e-4', '--data.seed', '3'] -> {'train.lr_g': '1e-4', 'data.seed': '3'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise ConfigError(f"unexpected argument '{arg}': overrides look like --section.key=value")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = arg[2:], args[i + 1]
            i += 1
        else:
            raise ConfigError(f"override '{arg}' has no value")
        out[key] = value
        i += 1
    return out


def build_config(config_path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults <- YAML file <- dotted overrides."""
    cfg = Config()
    if config_path:
        apply_dict(cfg, load_yaml(config_path), source=str(config_path))
    for key, value in (overrides or {}).items():
        set_value(cfg, key, value)
    validate(cfg)
    return cfg


# What a resumed run (--run.resume) may change: where it runs, where its data are read from, how it is tracked and
# which optional evaluation extras it adds, not what it computes. The data's split is checked against the
# checkpoint's when the data are loaded (app/run.py).
RESUME_SAFE_KEYS = ("train.device", "train.threads", "train.reuse_host_memory", "wandb.mode", "data.cache",
                    "data.root", "eval.judge", "eval.figures")


def given_keys(config_path: str | None, overrides: dict | None) -> set[str]:
    """The dotted keys that a --config file and command-line overrides set (what a resume compares)."""
    keys = set(overrides or {})
    if config_path:
        keys |= {f"{sec}.{k}" for sec, values in load_yaml(config_path).items() if isinstance(values, dict)
                 for k in values}
    return keys


def resume_config(saved: dict, cfg: Config, given: set[str]) -> tuple[Config, dict]:
    """The config of a resumed run: the checkpoint's (`saved`, as `to_dict` wrote it) with the values of `cfg` for
    the `given` keys that RESUME_SAFE_KEYS allows -> (config, {key: (checkpoint's value, new value)}). ConfigError
    naming the first other given key whose value differs from the checkpoint's (a resume would drop it)."""
    out = from_dict(saved)
    changed = {}
    for key in sorted(given - {"run.resume"}):
        section, name = key.split(".")
        old, new = getattr(getattr(out, section), name), getattr(getattr(cfg, section), name)
        if old == new:
            continue
        if key not in RESUME_SAFE_KEYS:
            raise ConfigError(f"config key '{key}' = {new!r} differs from the resumed checkpoint's {old!r}: a "
                              f"resumed run keeps its config (it may change only {', '.join(RESUME_SAFE_KEYS)}); "
                              "drop it, or start a new run")
        setattr(getattr(out, section), name, new)
        changed[key] = (old, new)
    return out, changed


UPSAMPLE_MODES = ("nearest", "bilinear")
N_UPSAMPLE_BLOCKS = 4  # the generator's x2 blocks: 4 -> 8 -> 16 -> 32 -> 64 px
DIFFAUG_OPS = ("color", "translation", "cutout")
AMP_MODES = ("off", "auto", "bf16", "fp16")  # train.amp (training/trainer.py: amp_dtype)


def block_modes(upsample: str) -> list[str]:
    """The x2 upsampling of each of the generator's four blocks from `upsample`: one mode for all blocks, or four
    comma-separated modes from the first block (to 8 px) to the last (to 64 px). ValueError naming the value."""
    modes = [m.strip() for m in upsample.split(",")]
    if len(modes) == 1:
        modes = modes * N_UPSAMPLE_BLOCKS
    bad = [m for m in modes if m not in UPSAMPLE_MODES]
    if len(modes) != N_UPSAMPLE_BLOCKS or bad:
        raise ValueError(f"upsampling {upsample!r}: give one of {', '.join(UPSAMPLE_MODES)}, or {N_UPSAMPLE_BLOCKS} "
                         "of them separated by commas (one per block, to 8, 16, 32 and 64 px)")
    return modes


def parse_policy(policy: str) -> list[str]:
    """A DiffAugment policy "color,translation,cutout" -> its op names; ValueError naming unknown ones."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in DIFFAUG_OPS]
    if unknown:
        raise ValueError(f"unknown DiffAugment op(s) {unknown}; choose from {sorted(DIFFAUG_OPS)}")
    return names


def check_truncation(psi: float, name: str = "truncation") -> float:
    """The sampling truncation psi (noise drawn as psi * z) must lie in [0, 1]: returns it, else ValueError
    naming `name`. The one check behind the config key, the generate command and the evaluation's --truncation."""
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {psi}")
    return psi


def validate(cfg: Config) -> None:
    """Cross-field checks that a type alone cannot express."""
    if cfg.wandb.mode not in ("auto", "online", "offline", "disabled"):
        raise ConfigError(f"config key 'wandb.mode' must be one of ('auto', 'online', 'offline', 'disabled'), "
                          f"got {cfg.wandb.mode!r}")
    if cfg.train.amp not in AMP_MODES:
        raise ConfigError(f"config key 'train.amp' must be one of {', '.join(AMP_MODES)}, got {cfg.train.amp!r}")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.train.device):
        raise ConfigError(f"config key 'train.device' must be auto, cpu, cuda or cuda:N, got {cfg.train.device!r}")
    try:
        block_modes(cfg.model.g_upsample)
    except ValueError as e:
        raise ConfigError(f"config key 'model.g_upsample': {e}") from None
    try:
        parse_policy(cfg.train.diffaug)
    except ValueError as e:
        raise ConfigError(f"config key 'train.diffaug': {e}") from None
    if cfg.train.encoder_epochs + cfg.train.gan_epochs > 200:
        raise ConfigError(
            f"train.encoder_epochs + train.gan_epochs = {cfg.train.encoder_epochs + cfg.train.gan_epochs} "
            "passes exceed the 200-epoch budget")
    for key, least in {"train.batch_size": 1, "train.gan_batch_size": 0, "train.wd_encoder": 0,
                       "train.whiten_eps": 0, "model.enc_depth": 1, "train.text_weight": 0,
                       "train.ssl_weight": 0, "train.semantic_weight": 0, "train.encoder_epochs": 0,
                       "train.gan_epochs": 0}.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < least:
            raise ConfigError(f"config key '{key}' must be >= {least}, got {value}")
    try:
        check_truncation(cfg.eval.truncation, "config key 'eval.truncation'")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not 0.0 <= cfg.train.affinity_alpha <= 1.0:
        raise ConfigError(f"config key 'train.affinity_alpha' must be in [0, 1], got {cfg.train.affinity_alpha}")
    if not 0.0 < cfg.data.val_fraction < 1.0:  # the validation images choose best.pt
        raise ConfigError(f"config key 'data.val_fraction' must be in (0, 1), got {cfg.data.val_fraction}")
    if cfg.data.limit_per_class < 0 or cfg.data.limit_per_class == 1:
        raise ConfigError(f"config key 'data.limit_per_class' must be 0 (all images) or >= 2 (one image of each "
                          f"class is held out for validation), got {cfg.data.limit_per_class}")
    if cfg.data.n_train_classes + cfg.data.n_test_classes > 102:
        raise ConfigError("data.n_train_classes + data.n_test_classes exceeds the 102 classes")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


# Keys that older versions wrote and that no longer do anything: dropped when a saved config is read back
# (checkpoints, run dirs), still errors in YAML files and overrides.
RETIRED_KEYS = {"eval.fid_samples"}  # FID/KID take one caption per test-class photo

# Options that were measured and not adopted, removed from the code: core/removed_keys.yaml holds each key with the
# value that meant "off" and the last commit that has its code (see that file for how they are treated).
REMOVED_TABLE = yaml.safe_load(Path(__file__).with_name("removed_keys.yaml").read_text())
REMOVED_KEYS = {key: row["off_value"] for key, row in REMOVED_TABLE.items()}  # key -> its "off" value
REMOVED_IN = {key: row["commit"] for key, row in REMOVED_TABLE.items()}  # key -> the commit with its code


def _removed_error(dotted: str, value=None) -> ConfigError:
    shown = "" if value is None else f" = {value!r}"
    commit = REMOVED_IN[dotted]
    return ConfigError(f"config key '{dotted}'{shown} was removed (measured and not adopted; its code and numbers: "
                       f"commit {commit}, docs/experiments.md); drop it, or use that commit")


def _drop_old_keys(data: dict) -> dict:
    """A saved config without RETIRED_KEYS and without REMOVED_KEYS at their "off" value; ConfigError naming a
    removed key set to anything else."""
    out = {}
    for sec, values in data.items():
        if not isinstance(values, dict):
            out[sec] = values
            continue
        kept = {}
        for k, v in values.items():
            dotted = f"{sec}.{k}"
            if dotted in RETIRED_KEYS:
                continue
            if dotted in REMOVED_KEYS:
                if v != REMOVED_KEYS[dotted]:
                    raise _removed_error(dotted, v)
                continue
            kept[k] = v
        out[sec] = kept
    return out


def from_dict(data: dict) -> Config:
    """Rebuild a Config from `to_dict` output (checkpoints, run dirs); unknown keys other than RETIRED_KEYS and
    REMOVED_KEYS at their "off" value are errors."""
    if isinstance(data, dict):
        data = _drop_old_keys(data)
    cfg = Config()
    apply_dict(cfg, data, source="saved config")
    validate(cfg)
    return cfg


def resolve_data_root(root: str = "") -> Path:
    """The official-layout folder: explicit value, else $OXFORD102_DIR, else data/oxford102 (where
    ``python -m data_utils.prepare --download`` puts the official files)."""
    candidates = [root] if root else []
    if not root and os.environ.get("OXFORD102_DIR"):
        candidates = [os.environ["OXFORD102_DIR"]]
    if not candidates:
        candidates = [d for d in DEFAULT_DATA_DIRS if Path(d).is_dir()]
    if not candidates:
        raise FileNotFoundError(
            "Oxford-102 data folder not found: pass --data.root=DIR (or --source DIR), set OXFORD102_DIR, "
            "or download it with `python -m data_utils.prepare --download --out data/flowers.h5`")
    path = Path(candidates[0])
    if not path.is_dir():
        raise FileNotFoundError(f"Oxford-102 data folder does not exist: {path}")
    return path
