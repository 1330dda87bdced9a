"""Triage across many runs: what the on-call engineer asks about runs at once."""
