"""Renderings of an analysis for people: the terminal report, the HTML page with charts, and one team's
share of either."""

from __future__ import annotations

from bridge.report.html import page_data, render_html
from bridge.report.teams import for_team, milestone_team_map, team_names
from bridge.report.terminal import render

__all__ = ["for_team", "milestone_team_map", "page_data", "render", "render_html", "team_names"]
