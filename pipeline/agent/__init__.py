"""Agents: the router and the bounded tool loops of the specialists (kb-ops, setup, migrate, ask).

``ops_ask`` (kb ops ask, chat model kb-ops) and ``agent`` (kb agent, chat model kb-agent) are the
entry points; both return an ``AgentAnswer`` with citations or ``uncertain``.
"""

from __future__ import annotations

from pipeline.agent.answer import AgentAnswer
from pipeline.agent.router import agent
from pipeline.agent.specialists import ops_ask

__all__ = ["AgentAnswer", "agent", "ops_ask"]
