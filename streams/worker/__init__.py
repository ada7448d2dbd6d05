"""A Sluice worker process: building it, running it, draining it, and the commands that start
it (`sluice run|worker|devbroker|config`)."""
