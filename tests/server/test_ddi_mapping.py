"""How DDI feedback becomes install reports (as hawkBit reads each execution), the ids
SWUpdate reads as 32-bit integers, the poll interval's shape, and byte ranges."""

from __future__ import annotations

import pytest

from patchline.server.ddi_api import _byte_range, _report_status
from patchline.server.ddi_shapes import action_id, module_id, polling_sleep
from patchline.wire.ddi import Execution, Finished
from patchline.wire.device_api import ReportCode, ReportStatus


@pytest.mark.parametrize(
    ("execution", "finished", "expected"),
    [
        ("closed", "success", (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE)),
        ("closed", "none", (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE)),
        ("closed", "failure", (ReportStatus.FAILED, ReportCode.INSTALL_FAILED)),
        ("proceeding", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("proceeding", "failure", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("rejected", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("scheduled", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("resumed", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("download", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("downloaded", "none", (ReportStatus.DOWNLOADING, ReportCode.NONE)),
        ("canceled", "none", None),
    ],
)
def test_feedback_maps_as_hawkbit_reads_it(
    execution: str, finished: str, expected: tuple[ReportStatus, ReportCode] | None
) -> None:
    assert _report_status(Execution(execution), Finished(finished)) == expected


def test_ids_fit_a_signed_32_bit_integer_and_differ_per_device() -> None:
    ids = {action_id(f"ctl-{i}", "alpha/1.1/alpha-1.1.swu") for i in range(1000)}
    assert len(ids) == 1000
    assert all(0 < i < 2**31 for i in ids)
    assert 0 < module_id("alpha/1.1/alpha-1.1.swu") < 2**31


def test_polling_sleep_is_hh_mm_ss() -> None:
    assert polling_sleep(1) == "00:00:01"
    assert polling_sleep(3725) == "01:02:05"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=50-500", (50, 99)),
        ("bytes=100-", False),
        ("bytes=9-3", False),
        ("bytes=-0", False),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=a-b", None),
    ],
)
def test_byte_ranges(header: str | None, expected: object) -> None:
    assert _byte_range(header, 100) == expected
