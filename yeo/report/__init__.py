"""The optimize run's report: plots (matplotlib) and report.json / .md / self-contained .html."""
