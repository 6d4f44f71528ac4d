"""The live-run core: Trainer (fixed events, fit/start, exact resume), State, callbacks, Controls, Recorder.

Imports only ``dsopt.util``. Everything a chapter trains goes through this loop, so knob changes,
records, checkpoints and interrupts behave the same in every chapter.
"""
