"""Hearth: a Database-as-a-Service control plane for OpenStack.

The API records what users ask for; the task manager carries it out through one resource engine
interface (natives, orchestrator or migration); the engines are the only code that talks to the cloud.
"""

__version__ = "0.1.0"
