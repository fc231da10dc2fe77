"""The base layer: typed config, atomic file and checkpoint I/O, device and runtime. Imports nothing of the project."""
