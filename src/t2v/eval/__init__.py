"""Evaluation: the Moving Shapes checker, reconstruction and speed metrics, and the ``t2v eval`` suites."""
