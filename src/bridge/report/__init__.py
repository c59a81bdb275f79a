"""Renderings of an analysis for people: the terminal report, and one team's share of it."""

from __future__ import annotations

from bridge.report.teams import for_team, milestone_team_map, team_names
from bridge.report.terminal import render

__all__ = ["for_team", "milestone_team_map", "render", "team_names"]
