"""The database side: engine, tables and set-based idempotent writes."""
