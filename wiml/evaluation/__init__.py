"""Evaluation: overlap and surface metrics, reports."""
