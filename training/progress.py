"""Training progress you can watch: one bar per phase of the schedule (training/schedule.py) with epoch k/N, the
step in the epoch, images/s and the phase's ETA, then a line with the run's ETA and the latest key losses.

Each phase's remaining time comes from its own measured epochs (wall time from the epoch's first step to its
last.pt, validation included): GAN epochs cost more than encoder epochs. A phase that has not run an epoch
yet is estimated from the latest measured phase's mean epoch time times the ratio of PHASE_COST (marked
"by ratio"); before any epoch has ended the run's ETA is unknown.

The display is drawn only when enabled (the Trainer enables it for rank 0 when stdout is a terminal); otherwise
every method returns at once and nothing is written, so CI logs, tests, sweep trials and `> file` see only the
Trainer's one-line-per-epoch log lines. Those lines still print while the display is live (above it).
"""
from __future__ import annotations

import time
from typing import Sequence

from .schedule import PHASES

# Relative cost of one epoch per phase, for phases not measured yet: the default experiment's epochs on a 2-core CPU
# (encoder 5.6 s, GAN ~9 s).
PHASE_COST = {"encoder": 1.0, "gan": 1.6}
KEY_LOSSES = ("enc/image_text", "gan/d_loss", "gan/g_adv")


def format_seconds(s: float | None) -> str:
    """42 -> "42s", 185 -> "3m05s", 3725 -> "1h02m"; None -> "?"."""
    if s is None:
        return "?"
    s = max(0, round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def done_epochs(plan: dict[str, int], phase: str, stage_epoch: int) -> dict[str, int]:
    """Finished epochs per phase when `phase` has finished `stage_epoch` of its epochs: the phases before it are
    complete, the ones after it not begun."""
    i = PHASES.index(phase)
    return {p: plan[p] if j < i else (stage_epoch if j == i else 0) for j, p in enumerate(PHASES)}


def phase_remaining(total_epochs: int, done: int, epoch_seconds: Sequence[float], fraction: float = 0.0
                    ) -> float | None:
    """Seconds left in a phase of `total_epochs` with `done` finished and `fraction` (0..1) of the current one
    behind it, at the mean of its measured `epoch_seconds`; 0 when nothing is left, None when nothing is left
    to measure by (no epoch measured yet)."""
    left = max(0.0, total_epochs - done - fraction)
    if left == 0:
        return 0.0
    m = mean(epoch_seconds)
    return None if m is None else left * m


def run_remaining(plan: dict[str, int], done: dict[str, int], measured: dict[str, Sequence[float]],
                  current: str | None = None, fraction: float = 0.0, cost: dict[str, float] = PHASE_COST
                  ) -> tuple[dict[str, tuple[float | None, str]], float | None]:
    """Remaining seconds per phase and for the run.

    plan / done: epochs per phase (schedule.phase_epochs, done_epochs); measured: each phase's measured epoch
    seconds; fraction: how much of the current phase's running epoch is behind it. Per phase: (seconds, how),
    how = "done" (nothing left), "measured" (its own epochs), "ratio" (the latest measured phase's mean epoch time
    x cost[phase] / cost[that phase]) or "unknown" (no phase measured yet: seconds None). The run's total is the
    sum, None while any phase is unknown."""
    ref = next((p for p in reversed(PHASES) if measured.get(p)), None)
    out: dict[str, tuple[float | None, str]] = {}
    for p in PHASES:
        frac = fraction if p == current else 0.0
        if plan[p] - done[p] - frac <= 0:
            out[p] = (0.0, "done")
        elif measured.get(p):
            out[p] = (phase_remaining(plan[p], done[p], measured[p], frac), "measured")
        elif ref is not None:
            est = mean(measured[ref]) * cost[p] / cost[ref]
            out[p] = (phase_remaining(plan[p], done[p], [est], frac), "ratio")
        else:
            out[p] = (None, "unknown")
    secs = [s for s, _ in out.values()]
    return out, None if any(s is None for s in secs) else sum(secs)


def images_per_second(steps: int, batch: int, seconds: float) -> float | None:
    """Throughput of `steps` steps of `batch` images in `seconds`; None before any time has passed."""
    return steps * batch / seconds if seconds > 0 and steps > 0 else None


class TrainingProgress:
    """The live display. `plan`: epochs per phase; `enabled` False: a silent no-op (see the module docstring);
    `console`: a rich Console (default: stdout's)."""

    def __init__(self, plan: dict[str, int], enabled: bool, console=None):
        self.plan, self.enabled, self.console = dict(plan), enabled, console
        self.measured: dict[str, list[float]] = {p: [] for p in PHASES}
        self.losses: dict[str, float] = {}
        self.live = None
        self.phase, self.stage_epoch, self.step, self.steps, self.rate = None, 0, 0, 1, None
        self._t0, self._step0, self._partial = 0.0, 0, False

    # ------------------------------------------------------------------ what the Trainer calls
    def start_epoch(self, phase: str, stage_epoch: int, step_in_epoch: int, steps: int) -> None:
        """An epoch of `phase` begins (or resumes at step_in_epoch; a resumed epoch is not measured)."""
        if not self.enabled:
            return
        self.phase, self.stage_epoch, self.step, self.steps = phase, stage_epoch, step_in_epoch, max(1, steps)
        self._t0, self._step0, self._partial, self.rate = time.time(), step_in_epoch, step_in_epoch > 0, None
        self._draw()

    def update(self, phase: str, step_in_epoch: int, batch: int, losses: dict[str, float]) -> None:
        """A log point: the step reached in the epoch and the losses just logged."""
        if not self.enabled:
            return
        self.step = step_in_epoch
        self.rate = images_per_second(step_in_epoch - self._step0, batch, time.time() - self._t0)
        self.losses.update({k: v for k, v in losses.items() if k in KEY_LOSSES})
        self._draw()

    def end_epoch(self, phase: str, stage_epoch: int) -> None:
        """The epoch is over (validation and last.pt included): its wall time is measured."""
        if not self.enabled:
            return
        if not self._partial:
            self.measured[phase].append(time.time() - self._t0)
        self.stage_epoch, self.step = stage_epoch, 0
        self._draw()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # ------------------------------------------------------------------ drawing
    def remaining(self) -> tuple[dict[str, tuple[float | None, str]], float | None]:
        done = done_epochs(self.plan, self.phase, self.stage_epoch)
        return run_remaining(self.plan, done, self.measured, self.phase, min(1.0, self.step / self.steps))

    def render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text
        per_phase, total = self.remaining()
        done = done_epochs(self.plan, self.phase, self.stage_epoch)
        grid = Table.grid(padding=(0, 1))
        for width in (7, 24, 22, 12, 10):  # fixed widths: the bars do not jump as the numbers change
            grid.add_column(min_width=width, no_wrap=True)
        for p in PHASES:
            n = self.plan[p]
            if n == 0:
                continue
            secs, how = per_phase[p]
            running = p == self.phase and done[p] < n
            frac = min(1.0, self.step / self.steps) if running else 0.0
            epoch = f"epoch {min(done[p] + 1, n) if running else done[p]}/{n}"
            step = f"step {self.step}/{self.steps}" if running else ""
            rate = f"{self.rate:.0f} img/s" if running and self.rate else ""
            if how == "done":
                eta = f"done in {format_seconds(sum(self.measured[p]))}" if self.measured[p] else "done"
            else:
                eta = f"ETA {format_seconds(secs)}" + (" (by ratio)" if how == "ratio" else "")
            grid.add_row(Text(f"{p:<7}", style="bold" if running else "dim"),
                         ProgressBar(total=n, completed=done[p] + frac, width=24),
                         Text(f"{epoch} {step}".strip()), Text(rate), Text(eta))
        passes = sum(self.plan.values())
        finished = sum(done.values())
        line = f"run: {finished}/{passes} epochs, ETA {format_seconds(total)}"
        if total is None:
            line += " (after the first epoch)"
        lines = [grid, Text(line)]
        if self.losses:
            lines.append(Text("latest " + " ".join(f"{k}={v:.4g}" for k, v in self.losses.items())))
        return Group(*lines)

    def _draw(self) -> None:
        if self.live is None:
            from rich.console import Console
            from rich.live import Live
            self.live = Live(self.render(), console=self.console or Console(), auto_refresh=False,
                             redirect_stdout=True, redirect_stderr=True)
            self.live.start()
        self.live.update(self.render(), refresh=True)
