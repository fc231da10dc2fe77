"""Which experiment `make run` trains when none is named: `experiments/default.yaml` (the GPU experiment; today
the same protocol as cpu.yaml) where torch sees CUDA, `experiments/cpu.yaml` (the protocol for a 2-core CPU) otherwise.

    python -m app.experiment    # prints the experiment's path on stdout, and which and why on stderr
"""
from __future__ import annotations

import sys

GPU_EXPERIMENT, CPU_EXPERIMENT = "experiments/default.yaml", "experiments/cpu.yaml"


def choose(cuda_available: bool, device_name: str = "") -> tuple[str, str]:
    """(experiment path, one line saying which and why)."""
    if cuda_available:
        return GPU_EXPERIMENT, (f"make run: {GPU_EXPERIMENT}, the GPU experiment, because torch sees "
                                f"CUDA ({device_name or 'a GPU'})")
    return CPU_EXPERIMENT, (f"make run: {CPU_EXPERIMENT}, the 2-core CPU protocol, because torch sees no CUDA GPU "
                            f"(today {GPU_EXPERIMENT} holds the same protocol)")


def main() -> int:
    import torch
    cuda = torch.cuda.is_available()
    path, why = choose(cuda, torch.cuda.get_device_name(0) if cuda else "")
    print(why, file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
