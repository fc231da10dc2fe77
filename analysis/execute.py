"""Run `analysis.ipynb` end to end and save it with its outputs (nbclient; nbconvert is not needed).

    ANALYSIS_SOURCE=runs/default-s0 .venv/bin/python -m analysis.execute            # in place
    .venv/bin/python -m analysis.execute --out /tmp/executed.ipynb                   # elsewhere
    .venv/bin/python -m analysis.execute --clear                                     # strip outputs only

The kernel is this very Python (a temporary `python3` kernelspec pointing at `sys.executable` is put
first on JUPYTER_PATH), and cells run with the repository root as the working folder.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "analysis.ipynb"
KERNEL_NAME = "python3"


@contextlib.contextmanager
def this_python_kernel():
    """Within the block, the kernelspec `python3` runs `sys.executable` (the venv's Python)."""
    with tempfile.TemporaryDirectory(prefix="kernelspec-") as tmp:
        spec = Path(tmp) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python"}))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp, *([old] if old else [])])
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def clear_outputs(nb) -> None:
    """Remove outputs, execution counts and execution timing metadata from every cell (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)


def execute_notebook(path=NOTEBOOK, timeout: int = 600, env: dict | None = None, cwd=REPO):
    """Execute the notebook at `path` (kernel: this Python, working folder `cwd`, extra environment `env`)
    and return the executed notebook node; cell errors raise nbclient's CellExecutionError. A value None in `env`
    removes that variable."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    with this_python_kernel():
        merged = {**os.environ, **(env or {})}
        client.execute(env={k: v for k, v in merged.items() if v is not None})
    return nb


def main(argv: list[str] | None = None) -> int:
    import nbformat
    p = argparse.ArgumentParser(prog="python -m analysis.execute", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", nargs="?", default=str(NOTEBOOK))
    p.add_argument("--out", help="where to save the executed notebook (default: in place)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.add_argument("--clear", action="store_true", help="only strip the outputs and save")
    args = p.parse_args(argv)
    out = args.out or args.notebook
    if args.clear:
        nb = nbformat.read(args.notebook, as_version=4)
        clear_outputs(nb)
    else:
        from nbclient.exceptions import CellExecutionError
        try:
            nb = execute_notebook(args.notebook, args.timeout)
        except CellExecutionError as e:
            print(f"error: a cell failed; nothing saved\n{e}", file=sys.stderr)
            return 1
    nbformat.write(nb, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
