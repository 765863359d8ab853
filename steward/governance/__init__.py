"""Governance: Rego policies on every proposed action, and the decision log behind them."""
