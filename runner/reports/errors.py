"""The one error type of `runner.reports`: a report file the runner refuses or cannot read."""

from __future__ import annotations


class ReportError(Exception):
    """A test report that cannot be used, with a one-line message for the user.

    The message always names the file (`source`) and says what is wrong with it, for example
    ``reports/junit.xml: refused: the file declares a DTD (<!DOCTYPE ...>) ...``. Callers that gather
    many files turn it into a warning and carry on with the rest.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
