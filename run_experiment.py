"""Train and evaluate the flower text-to-image GAN: the one entry point.

    python run_experiment.py --config experiments/default.yaml [--section.key=value ...] [--dry-run]

Overrides use the same dotted keys as the YAML files (what `wandb agent` passes as --key=value).
"""
from __future__ import annotations

import argparse
import sys

import yaml

from core.config import ConfigError, build_config, given_keys, parse_overrides, to_dict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="experiment YAML (overrides the typed defaults)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args, rest = p.parse_known_args(argv)
    try:
        overrides = parse_overrides(rest)
        cfg = build_config(args.config, overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    from app.run import RunExistsError, run  # imports torch: after the config is known to be valid
    from core.files import OutputError
    from core.io import CheckpointError
    from data_utils.records import DataError
    from tracking.tracker import TrackingError
    try:
        summary = run(cfg, given=given_keys(args.config, overrides))
    # user errors, one line each: --run.resume / --train.encoders_from name an unusable file, an unreadable data
    # cache or data folder, W&B online without credentials, a --run.name that already holds a run, a resume that
    # would change the run's config, a device that is not there, an output folder that cannot be written
    except (CheckpointError, ConfigError, DataError, TrackingError, RunExistsError, OutputError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(summary["run_dir"])
    return 0 if summary.get("status") in ("finished", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
