"""Upstream work: records produced onto the input topics become jobs (docs/upstream.md)."""
