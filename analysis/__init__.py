"""Helpers for the tutorial notebook `analysis.ipynb`: loading a run's files and drawing its figures.

    analysis.loading   runs, data, embeddings, tables of numbers (no plotting)
    analysis.figures   matplotlib figures
    analysis.tables    small HTML/plain-text tables (no pandas)
    analysis.execute   run the notebook end to end with nbclient and save it with its outputs

Nothing here trains or defines a model: every network, metric and generation step comes from the
project's own packages (models, evaluation, data_utils, tracking).
"""
