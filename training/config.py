"""Typed configuration: dataclass defaults <- experiments/*.yaml <- dotted command-line overrides.

    python run_experiment.py --config experiments/quick.yaml --train.gan_epochs=20 --data.seed=3

Unknown keys and values of the wrong type are rejected with the dotted key named, so a typo in a
YAML file or a sweep never silently runs the default. Booleans parse `true/false/1/0/yes/no`.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.generator import block_modes

from .diffaug import parse_policy

# The offline copy of the dataset lives beside the project on the dev/CI machines.
DEFAULT_DATA_DIRS = ("../shared/data/oxford102",)


@dataclass
class DataConfig:
    root: str = ""  # official-layout folder; "" -> $OXFORD102_DIR -> ../shared/data/oxford102
    cache: str = "data/flowers.h5"  # HDF5 cache written by `python -m data_utils.prepare`
    seed: int = 0  # seed of the 20/5 class split and of the validation hold-out
    n_train_classes: int = 20
    n_test_classes: int = 5
    val_fraction: float = 0.1  # share of each train class held out for checkpoint selection
    image_size: int = 64  # training resolution (random crops of the cached 72x72 images)
    max_caption_len: int = 32  # tokens; longer captions are truncated
    min_word_count: int = 2  # words seen fewer times in training captions map to <unk>
    limit_per_class: int = 0  # >0: keep only this many images per class (tests, demos)


@dataclass
class ModelConfig:
    embed_dim: int = 128  # source representation / shared image-text space
    enc_width: int = 32  # base channel width of the source encoder
    enc_depth: int = 1  # residual blocks per encoder stage (2: ResNet-18-like depth, ~2x the parameters)
    text_width: int = 128  # token embedding and GRU width of the text encoder
    text_dim: int = 128  # text encoding fed to the generator
    noise_dim: int = 64
    cond_dim: int = 64  # conditioning-augmentation output size for the text encoding
    g_width: int = 48  # preferred generator conv width (the mapping MLP is sized to hit g_ratio); 48 > 32: KID 0.086 vs 0.113
    g_upsample: str = "nearest"  # x2 upsampling: nearest | bilinear | subpixel (learned), or 4 comma-separated
    g_skip: bool = False  # StyleGAN2 skip generator: RGB from every resolution, bilinearly upsampled and summed
    g_cond_norm: bool = True  # conditional BatchNorm in every generator block, scale/shift from (c, r) (README)
    g_noise: bool = False  # per-pixel noise with learned per-channel scales after every generator conv (StyleGAN)
    d_width: int = 32  # base channel width of the discriminator
    d_rep: bool = False  # the discriminator also projects the source representation r (judges image-r fit)
    d_patch: bool = False  # D also scores 64 image patches (real vs generated, unconditional), PatchGAN-style
    g_ratio: float = 0.5  # generator params / encoder params (the assignment fixes 0.5)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0 = number of cores
    batch_size: int = 64
    gan_batch_size: int = 0  # stage 2's batch; 0 = batch_size (a smaller batch gives more GAN steps per epoch)
    encoder_epochs: int = 100  # stage 1: label-free image-text contrastive + augmentation SSL
    gan_epochs: int = 100  # stage 2: conditional GAN with the frozen encoder
    encoders_from: str = ""  # run dir or checkpoint: skip stage 1 and start stage 2 with its trained encoders
    lr_encoder: float = 2e-3
    wd_encoder: float = 0.5  # AdamW weight decay of the encoder stage (source and text encoders); 1e-4 before: README
    whiten_eps: float = 0.01  # end of stage 1: PCA-whiten the representation (eigenvalue floor, x the largest); 0 = off
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    temperature: float = 0.1
    affinity_alpha: float = 0.8  # share of each image's positive mass given to caption-similar images
    affinity_temperature: float = 0.1  # sharpness of the caption TF-IDF affinity
    text_weight: float = 1.0  # weight of the image-text contrastive term (0 = the encoder learns from images alone)
    semantic_weight: float = 2.0  # regress the representation onto the caption LSA of its image
    ssl_weight: float = 1.0  # weight of the image-image (augmentation) contrastive term
    view_scale_min: float = 1.0  # encoder views: random resized crops of >= this area share; 1 = plain crops
    view_jitter: float = 0.0  # encoder views: brightness/contrast/saturation factors in [1 - x, 1 + x]; 0 = off
    mix_weight: float = 0.0  # encoder stage: i-Mix term, mixed images matched to their mixed soft targets; 0 = off
    mix_alpha: float = 1.0  # i-Mix: per-image mixing weight ~ Beta(alpha, alpha)
    local_crops: int = 0  # encoder stage: extra small crops per image matched to the two global views (multi-crop)
    local_size: int = 32  # side of the local crops (cut at the cached scale, no resizing)
    gan_loss: str = "hinge"  # hinge | bce
    diffaug: str = "color,translation,cutout"  # DiffAugment policy; "" disables
    distill_aug: str = ""  # DiffAugment policy for the generated image the encoder sees in the distillation term
    r1_gamma: float = 0.1  # R1 gradient penalty on real images; 0 disables
    r1_every: int = 4  # lazy R1: apply every N discriminator steps (scaled by N)
    text_rep_prob: float = 1.0  # share of GAN steps whose r is the prior's guess from the caption (test-time path)
    mismatch_weight: float = 0.5  # matching-aware D: weight of (real image, wrong text)
    distill_weight: float = 1.0  # encoder(G(z, t, r)) should match r
    kl_weight: float = 1.0  # conditioning augmentation KL
    ema_decay: float = 0.995  # generator EMA (after a warm-up, see Trainer._update_ema): ~200-step time constant
    eval_every: int = 10  # epochs between validation metrics / best-checkpoint checks
    log_every: int = 20  # steps between logged losses
    max_steps: int = 0  # >0: cut every epoch to this many steps (smoke tests, benchmarks)
    amp: str = "off"  # mixed precision for the training steps: off | bf16 | fp16 (fp16 with gradient scalers)
    channels_last: bool = True  # NHWC memory layout for the conv nets (GAN step 840 -> 710 ms on the 2-core CPU)
    compile: bool = False  # torch.compile the source encoder and the generator's synthesis in the training steps
    reuse_host_memory: bool = True  # keep freed CPU tensor memory for the next step (glibc; see training/host_memory.py)


@dataclass
class EvalConfig:
    knn_k: int = 10
    samples_per_caption: int = 1
    captions_per_test_class: int = 40  # 200 samples over 5 test classes: class consistency +-0.03 (10: +-0.07)
    truncation: float = 1.0  # sampling noise z * truncation for every text-only sample (1 = as in training)
    figures: bool = True  # end-of-run t-SNE / UMAP / real-vs-generated PNGs in eval/figures (and to W&B)


@dataclass
class WandbConfig:
    mode: str = "auto"  # auto | online | offline | disabled
    project: str = "flower-t2i-gan"
    entity: str = ""
    group: str = ""
    tags: str = ""  # comma-separated


@dataclass
class RunConfig:
    name: str = ""  # "" -> timestamp-based id
    out_dir: str = "runs"
    resume: str = ""  # path to a run directory or checkpoint to resume


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    run: RunConfig = field(default_factory=RunConfig)


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
    with open(path) as f:
        data = yaml.safe_load(f) or {}
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


def check_truncation(psi: float, name: str = "truncation") -> float:
    """The sampling truncation psi (noise drawn as psi * z) must lie in [0, 1]: returns it, else ValueError
    naming `name`. The one check behind the config key, training.generate and the evaluation's --truncation."""
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {psi}")
    return psi


def validate(cfg: Config) -> None:
    """Cross-field checks that a type alone cannot express."""
    choices = {
        "train.gan_loss": (cfg.train.gan_loss, ("hinge", "bce")),
        "wandb.mode": (cfg.wandb.mode, ("auto", "online", "offline", "disabled")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"config key '{key}' must be one of {allowed}, got {value!r}")
    try:
        block_modes(cfg.model.g_upsample)
    except ValueError as e:
        raise ConfigError(f"config key 'model.g_upsample': {e}") from None
    for key in ("diffaug", "distill_aug"):
        try:
            parse_policy(getattr(cfg.train, key))
        except ValueError as e:
            raise ConfigError(f"config key 'train.{key}': {e}") from None
    if cfg.train.encoder_epochs + cfg.train.gan_epochs > 200:
        raise ConfigError(
            f"train.encoder_epochs + train.gan_epochs = {cfg.train.encoder_epochs + cfg.train.gan_epochs} "
            "exceeds the 200-epoch budget")
    for key, least in {"train.batch_size": 1, "train.gan_batch_size": 0, "train.local_crops": 0, "train.mix_weight": 0,
                       "train.wd_encoder": 0, "train.whiten_eps": 0, "model.enc_depth": 1,
                       "train.text_weight": 0, "train.ssl_weight": 0, "train.semantic_weight": 0}.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < least:
            raise ConfigError(f"config key '{key}' must be >= {least}, got {value}")
    if cfg.train.local_crops and not 8 <= cfg.train.local_size <= cfg.data.image_size:
        raise ConfigError(f"config key 'train.local_size' must be in [8, data.image_size = {cfg.data.image_size}], "
                          f"got {cfg.train.local_size}")
    try:
        check_truncation(cfg.eval.truncation, "config key 'eval.truncation'")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.train.mix_alpha <= 0:
        raise ConfigError(f"config key 'train.mix_alpha' must be > 0, got {cfg.train.mix_alpha}")
    if not 0.0 <= cfg.train.affinity_alpha <= 1.0:
        raise ConfigError(f"config key 'train.affinity_alpha' must be in [0, 1], got {cfg.train.affinity_alpha}")
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise ConfigError(f"config key 'data.val_fraction' must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.data.n_train_classes + cfg.data.n_test_classes > 102:
        raise ConfigError("data.n_train_classes + data.n_test_classes exceeds the 102 classes")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


# Keys that older versions wrote and that no longer do anything: dropped when a saved config is read back
# (checkpoints, run dirs), still errors in YAML files and overrides.
RETIRED_KEYS = {"eval.fid_samples"}  # FID/KID take one caption per test-class photo


def from_dict(data: dict) -> Config:
    """Rebuild a Config from `to_dict` output (checkpoints, run dirs); unknown keys other than
    RETIRED_KEYS are errors."""
    if isinstance(data, dict):
        data = {sec: ({k: v for k, v in values.items() if f"{sec}.{k}" not in RETIRED_KEYS}
                      if isinstance(values, dict) else values) for sec, values in data.items()}
    cfg = Config()
    apply_dict(cfg, data, source="saved config")
    validate(cfg)
    return cfg


def resolve_data_root(root: str = "") -> Path:
    """The official-layout folder: explicit value, else $OXFORD102_DIR, else ../shared/data/oxford102."""
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
