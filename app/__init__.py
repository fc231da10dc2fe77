"""The application layer: the run pipeline (app/run.py) and the command-line tools (evaluate, generate, spectrum)."""
