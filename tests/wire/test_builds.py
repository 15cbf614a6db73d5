import pytest

from patchline.wire.builds import build_sort_key, is_newer_build


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        ("1.10", "1.9"),
        ("2.0", "1.99.99"),
        ("20260105.2", "20260105.1"),
        ("2.0.1", "2.0"),
        ("QP1A.190711.020", "QP1A.190711.019"),
    ],
)
def test_builds_order_naturally(newer: str, older: str) -> None:
    assert is_newer_build(newer, older)
    assert not is_newer_build(older, newer)


def test_equal_builds_are_not_newer() -> None:
    assert not is_newer_build("1.0", "1.0")
    assert build_sort_key("1.0") == build_sort_key("1.0")
