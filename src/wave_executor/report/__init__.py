"""Pictures of a graph and of a run: mermaid, dot and a self-contained HTML report.

Standard library only: the HTML report is one file with inline SVG and CSS
(no script, nothing fetched), so it opens anywhere, offline.
"""

from wave_executor.report.graph import to_dot, to_mermaid
from wave_executor.report.html import Bar, Timeline, critical_path, render_report

__all__ = ["Bar", "Timeline", "critical_path", "render_report", "to_dot", "to_mermaid"]
