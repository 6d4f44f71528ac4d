"""The chapters as a product: ``registry`` (notebooks and their validated parameters), ``runner``
(papermill), ``results`` (the metrics JSON) and ``cli`` (the ``dsopt`` command).

Importing this package must stay cheap (no torch): the command line answers ``--help`` from it.
"""
