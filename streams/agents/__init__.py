"""The agents of a Sluice worker, one module each."""

from __future__ import annotations

from streams.agents import chunks, housekeeping, progress
from streams.app import Sluice

AGENT_MODULES = (chunks, progress, housekeeping)


def register_agents(sluice: Sluice) -> None:
    for module in AGENT_MODULES:
        module.register(sluice)
