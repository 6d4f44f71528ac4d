"""The chapters as a product: ``registry`` (notebooks and their validated parameters), ``runner``
(papermill), ``results`` (the metrics JSON), ``lab`` and ``notebook``; the ``dsopt`` command that drives them
is :mod:`dsopt.cli`.

Importing this package must stay cheap (no torch): the command line answers ``--help`` and ``list`` from it.
"""
