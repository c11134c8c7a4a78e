"""Test reports: JUnit parsing, collection from a workspace, the merged junit.xml and the HTML report.

The public surface is small and cheap to import: junitparser, defusedxml and Jinja2 load only when a
function that needs them runs.
"""

from runner.reports.collect import collect
from runner.reports.errors import ReportError
from runner.reports.junit import parse_junit
from runner.reports.merge import write_merged_junit
from runner.reports.model import STATUSES, Rerun, TestCase, counts
from runner.reports.render import render_report

__all__ = [
    "STATUSES",
    "ReportError",
    "Rerun",
    "TestCase",
    "collect",
    "counts",
    "parse_junit",
    "render_report",
    "write_merged_junit",
]
