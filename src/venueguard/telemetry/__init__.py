"""Metrics, the structured event log and alerts."""
