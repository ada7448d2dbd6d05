"""Sluice's front doors: the HTTP API (served by every worker) and the `sluice` command."""
