"""Environments: MuJoCo control (control/) and text tasks (text/), with the verifiers and generation backends
that text needs."""
