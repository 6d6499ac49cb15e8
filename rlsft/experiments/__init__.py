"""Experiments by domain: what the trainer runs (policy, batch source, evaluation)."""
