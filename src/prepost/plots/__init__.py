"""Plots by stage (de, enrich, qc, claims) on one deterministic Agg backend (plots.common)."""
