"""A W&B sweep file: loading, validation (before any trial runs), the command line of a trial, and a preflight check
of the runner's config. Used by the local driver (tracking/sweep.py) and by `--validate-only`."""
from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from core.config import Config, ConfigError, build_config, parse_overrides, set_value

SWEEP_METRIC = "eval/score"  # the run summary key the sweeps optimise (app/run.py writes it)
STOP_METRIC, STOP_GOAL = "val/kid", "minimize"
METHODS = ("grid", "random", "bayes")
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
ARG_MACROS = ("${args}", "${args_no_equals}")  # the formats run_experiment.py parses
OTHER_ARG_MACROS = ("${args_no_hyphens}", "${args_no_boolean_flags}", "${args_json}", "${args_json_file}",
                    "${args_append_hydra}", "${args_override_hydra}")
RESERVED_SECTIONS = ("run", "wandb")  # set by the sweep machinery, not hyperparameters
DISCRETE_GRID_TYPES = ("param_single_value", "param_categorical", "param_int_uniform", "param_quniform")
STATE_OF_STATUS = {"finished": "finished", "failed": "failed", "stopped": "killed", "running": "running"}


class SweepError(ValueError):
    """A sweep file or driver request that cannot work; the message names the problem."""


def _engine():
    with warnings.catch_warnings():  # sweeps 0.2.0 uses pydantic-v1 config names
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


# ----------------------------------------------------------------------------------- validation
def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: malformed YAML: {e}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: expected a mapping (method, metric, parameters, ...) at the top level")
    return data


def _py(value: Any) -> Any:
    """numpy scalars -> Python values (for command lines and JSON)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _samples(name: str, spec: dict, method: str, source: str) -> list:
    """Values of a parameter to type-check against the runner's config."""
    import jsonschema
    _engine()
    from sweeps.params import HyperParameter
    try:
        hp = HyperParameter(name, spec)
    except (jsonschema.ValidationError, ValueError) as e:
        msg = getattr(e, "message", None) or str(e)
        raise SweepError(f"{source}: parameter '{name}': invalid specification {spec} "
                         f"({msg.splitlines()[0]})") from None
    if method == "grid" and hp.type not in DISCRETE_GRID_TYPES:
        dist = hp.config.get("distribution", hp.type.replace("param_", ""))
        raise SweepError(f"{source}: method 'grid' cannot search the continuous range of '{name}' "
                         f"(distribution {dist}); list the grid points with `values: [...]`")
    if "values" in hp.config:
        return list(hp.config["values"])
    if "value" in hp.config:
        return [hp.config["value"]]
    out = []
    for q in (0.0, 0.137, 0.5, 0.863, 1.0):  # bounds and interior points: catches floats for int keys
        v = _py(hp.ppf(q))
        if isinstance(v, float) and not math.isfinite(v):
            continue
        out.append(v)
    return out


def validate_sweep(config: dict, source: str = "sweep") -> dict:
    """Check a sweep config before any trial runs; raise SweepError naming the problem.

    Checks the method, the metric (bayes and early termination need one), each parameter (a dotted
    key the runner's typed config knows, every value / range end of the right type, no continuous
    range in a grid, not a run.* / wandb.* key), the command (must pass `${args}`), then W&B's own
    sweep schema. Returns the config unchanged.
    """
    if not isinstance(config, dict):
        raise SweepError(f"{source}: expected a mapping at the top level")
    method = config.get("method")
    if method not in METHODS:
        raise SweepError(f"{source}: unknown method {method!r} (grid | random | bayes)")
    metric = config.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not metric.get("name"):
            raise SweepError(f"{source}: metric must be a mapping with a name, e.g. {{name: {SWEEP_METRIC}, "
                             "goal: maximize}")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SweepError(f"{source}: metric goal {metric.get('goal')!r} must be minimize or maximize")
    if method == "bayes" and metric is None:
        raise SweepError(f"{source}: method 'bayes' needs a metric to optimize, e.g. "
                         f"metric: {{name: {SWEEP_METRIC}, goal: maximize}}")
    if config.get("early_terminate") is not None:
        et = config["early_terminate"]
        if metric is None:
            raise SweepError(f"{source}: early_terminate needs a metric section")
        if not isinstance(et, dict) or et.get("type") != "hyperband":
            raise SweepError(f"{source}: early_terminate type must be hyperband, got {et!r}")
        if "min_iter" not in et and not ("max_iter" in et and "s" in et):
            raise SweepError(f"{source}: hyperband early_terminate needs min_iter (or max_iter and s)")
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{source}: 'parameters' must map dotted config keys (e.g. train.lr_g) to "
                         "search specifications")
    base = Config()
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise SweepError(f"{source}: parameter '{name}' must be a mapping (values: [...], or min/max)")
        if "parameters" in spec:
            raise SweepError(f"{source}: parameter '{name}' nests parameters; use flat dotted names such as "
                             f"'{name}.key' (the runner takes --section.key=value)")
        if str(name).split(".")[0] in RESERVED_SECTIONS:
            raise SweepError(f"{source}: parameter '{name}' is set by the sweep machinery (run.*, wandb.*) and "
                             "cannot be searched")
        for value in _samples(str(name), spec, method, source):
            if value is None or isinstance(value, (list, dict)):
                raise SweepError(f"{source}: parameter '{name}': value {value!r} cannot be passed as "
                                 f"--{name}=VALUE")
            try:
                set_value(base, str(name), value)
            except ConfigError as e:
                raise SweepError(f"{source}: parameter '{name}': {e}") from None
    command = config.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not all(isinstance(c, (str, int, float)) for c in command):
        raise SweepError(f"{source}: command must be a list of strings")
    if not any(c in ARG_MACROS for c in command):
        used = [c for c in command if c in OTHER_ARG_MACROS]
        raise SweepError(f"{source}: command must pass the parameters with ${{args}} (--key=value, what "
                         f"run_experiment.py reads)" + (f", not {used[0]}" if used else ""))
    if "${program}" in command and not config.get("program"):
        raise SweepError(f"{source}: command uses ${{program}} but no program is set (program: run_experiment.py)")
    violations = _engine().schema_violations_from_proposed_config(config)
    if violations:
        raise SweepError(f"{source}: " + "; ".join(violations))
    if config.get("early_terminate") is not None:
        try:  # the engine's own checks of the bands (e.g. max_iter too small for s and eta)
            _engine().stop_runs(config, [])
        except ValueError as e:
            raise SweepError(f"{source}: early_terminate: {e}") from None
    return config


# ----------------------------------------------------------------------------------- trials
def _split_extra(extra: list[str]) -> tuple[str | None, dict[str, str]]:
    """Extra trial arguments -> (--config file, dotted overrides); ConfigError on anything else."""
    config, rest, i = None, [], 0
    while i < len(extra):
        a = extra[i]
        if a == "--config" and i + 1 < len(extra):
            config, i = extra[i + 1], i + 2
            continue
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return config, parse_overrides(rest)


def expand_command(config: dict, params: dict, python: str = sys.executable) -> list[str]:
    """The sweep's command with the W&B agent's macros replaced (as `wandb agent` would on Linux)."""
    out: list[str] = []
    for tok in config.get("command", DEFAULT_COMMAND):
        tok = str(tok)
        if tok == "${env}":
            continue  # the agent adds /usr/bin/env; the interpreter is explicit here
        if tok == "${interpreter}":
            out.append(python)
        elif tok == "${program}":
            out.append(str(config["program"]))
        elif tok == "${args}":
            out += [f"--{k}={v}" for k, v in params.items()]
        elif tok == "${args_no_equals}":
            out += [x for k, v in params.items() for x in (f"--{k}", str(v))]
        else:
            out.append(tok)
    return out


def preflight(config: dict, extra: list[str]) -> None:
    """Checks of the driver's own inputs before any trial: program, --config file, extra arguments, and each
    parameter's values and range ends against the trial config's limits (core.config.validate)."""
    program = config.get("program")
    if program and not Path(program).is_file():
        raise SweepError(f"program {program!r} not found (relative to the current folder {Path.cwd().name}/)")
    literal = [str(c) for c in config.get("command", DEFAULT_COMMAND) if not str(c).startswith("${")]
    try:
        cfg_file, overrides = _split_extra(literal + list(extra))
    except ConfigError as e:
        raise SweepError(f"trial arguments: {e}") from None
    for key in overrides:
        if key in config["parameters"]:
            raise SweepError(f"extra argument --{key} would override the swept parameter '{key}'")
        if key in ("run.name", "run.out_dir", "run.resume", "wandb.group"):
            raise SweepError(f"extra argument --{key} is set by the sweep driver for each trial")
    if Path(program or "").name == "run_experiment.py":
        try:
            build_config(cfg_file, overrides)
        except ConfigError as e:
            raise SweepError(f"trial arguments: {e}") from None
        for name, spec in config["parameters"].items():  # every value and range end within the config's limits
            values = _samples(str(name), spec, config["method"], "sweep")
            for value in values[:1] + values[-1:] + values[1:-1]:  # a range's ends first
                try:
                    build_config(cfg_file, {**overrides, str(name): value})
                except ConfigError as e:
                    raise SweepError(f"parameter '{name}' = {value!r} breaks the trial config's limits: {e}") from None
