"""Experiment tracking through W&B, in any mode, never fatal to training.

Modes (`--wandb.mode`): `auto` goes online only when credentials exist (WANDB_API_KEY,
WANDB_IDENTITY_TOKEN_FILE, or a netrc entry for the W&B host), otherwise offline; it never prompts.
`online` without credentials is an error (TrackingError) raised before training starts; `offline`
writes a run folder to upload later with `wandb sync`; `disabled` does not even import wandb. With `auto`, a
WANDB_MODE environment variable (CI sets `disabled`) takes precedence.

W&B's own files stay inside the project: unless the caller set them, WANDB_DIR is the runs folder
(the run directory's parent; W&B adds `wandb/offline-run-*` there) and W&B's cache, staging area
(data), artifact downloads and, when not online, its config folder go to `<WANDB_DIR>/wandb-home/`.
These variables are set while the tracker is alive and restored by `finish()`.

The config is logged with flat dotted keys (`train.lr_g`), the names a sweep's parameters use, so a
sweep agent's values and the run's own config are the same W&B keys. The console (stdout and stderr, copied as
they are printed) goes to the run's Logs tab, offline into the run folder's files/output.log. The API key is never logged: it
is only read from the environment / netrc by W&B itself, and any config string containing it is
masked. Any W&B error is reported once and tracking switches itself off; training continues.
"""
from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.wandb.ai"
STEP_PREFIXES = ("enc", "gan", "val", "monitor", "time")  # logged against images_seen


class TrackingError(RuntimeError):
    """Tracking was asked for in a way that cannot work (e.g. online without credentials)."""


def _base_url() -> str:
    """The W&B host: WANDB_BASE_URL, else the `base_url` that `wandb login --host` saved, else wandb.ai."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    import configparser
    cfg_dir = os.environ.get("WANDB_CONFIG_DIR") or str(Path.home() / ".config" / "wandb")
    parser = configparser.ConfigParser()
    try:
        parser.read(Path(cfg_dir) / "settings")
        return parser.get("default", "base_url", fallback=DEFAULT_BASE_URL) or DEFAULT_BASE_URL
    except (configparser.Error, OSError):
        return DEFAULT_BASE_URL


def _netrc_path() -> Path:
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    for name in (".netrc", "_netrc"):
        if (Path.home() / name).exists():
            return Path.home() / name
    return Path.home() / ".netrc"


def has_credentials() -> bool:
    """Whether W&B could authenticate without prompting (the key itself is never returned)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    url = _base_url()
    host = urlsplit(url if "://" in url else f"https://{url}").netloc
    try:
        auth = netrc.netrc(str(_netrc_path())).authenticators(host)
        return bool(auth and auth[2])
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str) -> str:
    """auto|online|offline|disabled -> the mode wandb.init gets; never prompts for a login."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise TrackingError(f"unknown W&B mode {mode!r} (auto | online | offline | disabled)")
    env_mode = os.environ.get("WANDB_MODE", "")
    if mode == "auto" and env_mode in ("offline", "disabled"):
        return env_mode
    if mode == "auto":
        return "online" if has_credentials() else "offline"
    if mode == "online" and not has_credentials():
        raise TrackingError("--wandb.mode=online needs W&B credentials: run `wandb login` (or set "
                            "WANDB_API_KEY), or use --wandb.mode=offline and `wandb sync` later")
    return mode


def flatten_config(d: dict, prefix: str = "") -> dict:
    """{'train': {'lr_g': 1e-4}} -> {'train.lr_g': 1e-4} (the names sweep parameters use)."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


def unflatten_config(d: dict) -> dict:
    """Inverse of flatten_config for dotted keys; other keys are kept as they are."""
    out: dict = {}
    for k, v in d.items():
        parts = str(k).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = v
    return out


def _mask_secrets(values: dict) -> dict:
    """Replace any string that contains the API key (it should never be in a config, but make sure)."""
    key = os.environ.get("WANDB_API_KEY", "")
    if len(key) < 8:
        return values
    return {k: ("***" if isinstance(v, str) and key in v else v) for k, v in values.items()}


def wandb_env(wandb_dir: Path, mode: str) -> dict[str, str]:
    """The W&B location variables for a runs folder (see the module docstring)."""
    home = Path(wandb_dir) / "wandb-home"  # not ".wandb": W&B would take that for its run folder
    env = {"WANDB_DIR": str(wandb_dir), "WANDB_CACHE_DIR": str(home / "cache"),
           "WANDB_DATA_DIR": str(home / "data"), "WANDB_ARTIFACT_DIR": str(home / "artifacts"),
           "WANDB_SILENT": "true"}
    if mode != "online":  # online keeps the user's config folder: `wandb login --host` saves the host there
        env["WANDB_CONFIG_DIR"] = str(home / "config")
    return env


class Tracker:
    """Thin wrapper over a wandb run; every call is guarded so W&B trouble never stops training."""

    def __init__(self, cfg_dict: dict, wc, run_dir: Path, resume_id: str = "", log=print):
        self.log_fn, self.run, self.run_id, self.sync_dir = log, None, "", ""
        self.mode = resolve_mode(wc.mode)
        self.wandb_dir = Path(os.environ.get("WANDB_DIR") or Path(run_dir).parent).resolve()
        self._saved_env: dict[str, str | None] = {}
        if self.mode == "disabled":  # no wandb at all: nothing imported, nothing written
            return
        self.wandb_dir.mkdir(parents=True, exist_ok=True)
        for name, value in wandb_env(self.wandb_dir, self.mode).items():
            if name not in os.environ:  # what the user or a parent process set wins
                self._saved_env[name] = None
                os.environ[name] = value
        self._call(self._init, cfg_dict, wc, run_dir, resume_id)

    def _init(self, cfg_dict, wc, run_dir, resume_id):
        import wandb
        self.run = wandb.init(project=wc.project, entity=wc.entity or None, group=wc.group or None,
                              tags=[t for t in wc.tags.split(",") if t] or None,
                              config=_mask_secrets(flatten_config(cfg_dict)),
                              name=Path(run_dir).name, id=resume_id or None,
                              resume="allow" if resume_id else None, mode=self.mode,
                              dir=str(self.wandb_dir), settings=wandb.Settings(console="wrap"))
        self.run_id = self.run.id
        self.sync_dir = str(getattr(self.run.settings, "sync_dir", "") or "")
        for prefix in STEP_PREFIXES:
            self.run.define_metric(f"{prefix}/*", step_metric="images_seen")

    def _call(self, fn, *args, **kwargs):
        if fn != self._init and self.run is None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking must never kill training
            warnings.warn(f"W&B call failed, tracking disabled for this run: {e}")
            self.log_fn(f"warning: W&B failed ({e}); training continues without tracking")
            self.run = None
            return None

    @property
    def active(self) -> bool:
        return self.run is not None and self.mode != "disabled"

    def config_overrides(self) -> dict:
        """The run's config as W&B holds it, flat dotted keys (a sweep agent's merged parameters)."""
        return self._call(lambda: dict(self.run.config)) or {}

    def define_goals(self, goals: dict[str, str]) -> None:
        """{metric: "min" | "max"}: W&B's run summary keeps each metric's best value (and its last) rather than only
        its last; a value written with `summary()` is kept as it is."""
        def _define():
            for name, goal in goals.items():
                step = "images_seen" if name.split("/")[0] in STEP_PREFIXES else None
                self.run.define_metric(name, step_metric=step, summary=f"{goal},last")
        self._call(_define)

    def log(self, metrics: dict, step: int | None = None) -> None:
        # `step` (images seen) is logged as the `images_seen` metric and used as the x-axis through
        # define_metric; W&B's own step stays monotonic across resumes.
        self._call(lambda: self.run.log({k: v for k, v in metrics.items() if k != "stage"}))

    def log_image(self, key: str, path: Path, captions: list[str], step: int | None = None) -> None:
        def _log():
            import wandb
            caption = "\n".join(f"row {i}: {c}" for i, c in enumerate(captions))
            self.run.log({key: wandb.Image(str(path), caption=caption),
                          **({"images_seen": step} if step is not None else {})})
        self._call(_log)

    def log_table(self, key: str, rows: list[dict]) -> None:
        if not rows:
            return

        def _log():
            import wandb
            cols = list(rows[0])
            self.run.log({key: wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])})
        self._call(_log)

    def summary(self, values: dict) -> None:
        self._call(lambda: self.run.summary.update(_mask_secrets(values)))

    def log_artifact(self, path: Path, name: str, aliases: list[str], metadata: dict | None = None) -> None:
        def _log():
            import wandb
            art = wandb.Artifact(name, type="model", metadata=metadata or {})
            art.add_file(str(path))
            self.run.log_artifact(art, aliases=aliases)
        self._call(_log)

    def finish(self, exit_code: int = 0) -> None:
        offline = self.run is not None and self.mode == "offline"
        self._call(lambda: self.run.finish(exit_code=exit_code))
        self.run = None
        if offline and self.sync_dir:
            self.log_fn(f"W&B offline run saved in {self.sync_dir}; upload it with `wandb sync {self.sync_dir}`")
        for name, old in self._saved_env.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self._saved_env = {}
