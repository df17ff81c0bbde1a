"""Fault tests record one result row each; the Markdown table of all rows is printed at the end of the run
(docs/reliability.md keeps the table of a real run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.faults.harness import platform, service_dbs, var_dir  # noqa: F401 - fixtures for the fault tests
from tests.faults.pgcluster import PrivateCluster, unavailable_reason


@dataclass(frozen=True)
class FaultResult:
    fault: str
    posts: int
    lost: int
    duplicates: int
    recovery_s: float | None
    note: str = ""


RESULTS: list[FaultResult] = []


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster the test may stop and start (never the shared server)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"needs a private PostgreSQL cluster: {reason}")
    c = PrivateCluster().init()
    c.start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def record_fault() -> Callable[..., FaultResult]:
    """``record_fault("F7 ...", posts=..., lost=..., duplicates=..., recovery_s=..., note=...)``"""

    def record(fault: str, **values: object) -> FaultResult:
        result = FaultResult(fault, **values)  # type: ignore[arg-type]
        RESULTS.append(result)
        return result

    return record


def results_table(results: list[FaultResult]) -> str:
    lines = [
        "| Fault | Posts (2xx) | Lost | Duplicate effects | Recovery (s) | Notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        lines.append(f"| {r.fault} | {r.posts} | {r.lost} | {r.duplicates} | {recovery} | {r.note} |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.write_sep("=", "fault results")
    terminalreporter.write_line(results_table(RESULTS))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keeps each phase's report on the test item, so that fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
