"""The monitor, dashboard, report and chaos runner."""
