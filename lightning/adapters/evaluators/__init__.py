"""Evaluators behind the Evaluator port: ``rubric`` (deterministic) and ``judge`` (azure-ai-evaluation).

``Container.evaluator(name)`` picks one; nothing is imported here so the judge's SDK
loads only when a judge is configured.
"""
