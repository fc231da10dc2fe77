"""Experiment tracking through W&B, in any mode, never fatal to training.

`--wandb.mode=auto` goes online only when credentials exist (WANDB_API_KEY or a netrc entry for the
W&B host), otherwise offline; it never prompts. W&B's own files stay inside the project: WANDB_DIR
defaults to the runs folder. Any W&B error is reported once and tracking switches itself off.
"""
from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        auth = netrc.netrc(path).authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai")
                                                .replace("https://", "").replace("http://", ""))
        return bool(auth and auth[2])
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class TrackingError(RuntimeError):
    """Tracking was asked for in a way that cannot work (e.g. online without credentials)."""


def resolve_mode(mode: str) -> str:
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "online") and mode == "auto":
        return os.environ["WANDB_MODE"]
    if mode == "auto":
        return "online" if has_credentials() else "offline"
    if mode == "online" and not has_credentials():
        raise TrackingError("--wandb.mode=online needs W&B credentials: run `wandb login` (or set "
                            "WANDB_API_KEY), or use --wandb.mode=offline and `wandb sync` later")
    return mode


class Tracker:
    """Thin wrapper over a wandb run; every call is guarded so W&B trouble never stops training."""

    def __init__(self, cfg_dict: dict, wc, run_dir: Path, resume_id: str = "", log=print):
        self.log_fn, self.run, self.run_id, self.mode = log, None, "", resolve_mode(wc.mode)
        os.environ.setdefault("WANDB_DIR", str(Path(run_dir).parent.resolve()))
        os.environ.setdefault("WANDB_DATA_DIR", str(Path(run_dir).parent.resolve() / "wandb-data"))
        os.environ.setdefault("WANDB_SILENT", "true")
        self._call(self._init, cfg_dict, wc, run_dir, resume_id)

    def _init(self, cfg_dict, wc, run_dir, resume_id):
        import wandb
        self.run = wandb.init(project=wc.project, entity=wc.entity or None, group=wc.group or None,
                              tags=[t for t in wc.tags.split(",") if t] or None, config=cfg_dict,
                              name=Path(run_dir).name, id=resume_id or None,
                              resume="allow" if resume_id else None, mode=self.mode,
                              dir=os.environ["WANDB_DIR"], settings=wandb.Settings(console="off"))
        self.run_id = self.run.id if self.mode != "disabled" else ""
        if self.mode != "disabled":
            for prefix in ("enc", "gan", "val", "time"):
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

    def config_overrides(self) -> dict:
        """The run's config as W&B holds it (a sweep agent's merged parameters)."""
        return self._call(lambda: dict(self.run.config)) or {}

    def log(self, metrics: dict, step: int | None = None) -> None:
        self._call(lambda: self.run.log({k: v for k, v in metrics.items() if k != "stage"}))

    def log_image(self, key: str, path: Path, captions: list[str], step: int | None = None) -> None:
        import wandb
        caption = "\n".join(f"row {i}: {c}" for i, c in enumerate(captions))
        self._call(lambda: self.run.log({key: wandb.Image(str(path), caption=caption),
                                         **({"images_seen": step} if step is not None else {})}))

    def log_table(self, key: str, rows: list[dict]) -> None:
        import wandb
        if not rows:
            return
        cols = list(rows[0])
        self._call(lambda: self.run.log({key: wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in rows])}))

    def summary(self, values: dict) -> None:
        self._call(lambda: self.run.summary.update(values))

    def log_artifact(self, path: Path, name: str, aliases: list[str], metadata: dict | None = None) -> None:
        import wandb

        def _log():
            art = wandb.Artifact(name, type="model", metadata=metadata or {})
            art.add_file(str(path))
            self.run.log_artifact(art, aliases=aliases)
        self._call(_log)

    def finish(self, exit_code: int = 0) -> None:
        self._call(lambda: self.run.finish(exit_code=exit_code))
        self.run = None
