"""The parity harness: the real torch reference libraries vs jaxlinear, on the same weights and inputs.

Run ``python -m parity`` (see ``parity/__main__.py``). This package imports torch; ``jaxlinear`` never does.
"""
