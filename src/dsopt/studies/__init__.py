"""Controlled measurements, one module per chapter (``lr_restarts``, ``attention_pruning``, ``dynamic_weighting``, ...).

Each study compares arms on real data with several seeds and the same budget, and turns the table into
a verdict. ``jobs`` runs a study's grid of runs cached, resumable and in parallel worker processes.
"""
