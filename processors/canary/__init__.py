"""Canary analysis: the judge (pure) that rollouts use to compare versions."""
