"""The agents and timers of a Sluice worker, one module each; streams/worker/build.py
attaches them to the runtime."""
