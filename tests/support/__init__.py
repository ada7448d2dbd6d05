"""Real parts for the tests: broker, database, worker processes, generated data."""
