"""Unit parsing and formatting: accepted spellings, exact round trips, every rejection message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnsim import units
from bnsim.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64KiB", 65536),
        ("22MiB", 23068672),
        ("1GiB", 2**30),
        ("64B", 64),
        ("1.5KB", 1500),
        ("2 MB", 2_000_000),
        ("1TB", 10**12),
        ("0.5KiB", 512),
    ],
)
def test_parse_bytes_binary_and_decimal(text: str, expected: int) -> None:
    assert units.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (units.parse_frequency, "2.6GHz", 2.6e9),
        (units.parse_frequency, "1530MHz", 1.53e9),
        (units.parse_bandwidth, "21.3GB/s", 21.3e9),
        (units.parse_bandwidth, "1GiB/s", 2.0**30),
        (units.parse_duration, "90ns", 9e-8),
        (units.parse_duration, "1.5us", 1.5e-6),
        (units.parse_cycles, "14cycles", 14),
        (units.parse_cycles, "1 cycle", 1),
    ],
)
def test_parse_other_dimensions(parse, text: str, expected: float) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (
            units.parse_bytes,
            "65536",
            "'65536' has no unit: write a size with its unit, such as '64KiB'",
        ),
        (units.parse_bytes, 65536, "65536 has no unit"),
        (units.parse_bytes, "64 kib", "unknown unit 'kib' for a size (allowed: B, KB, MB"),
        (units.parse_bytes, "1.3B", "'1.3B' is not a whole number of bytes"),
        (units.parse_bytes, "lots", "cannot parse 'lots' as a size"),
        (units.parse_bytes, None, "expected a size such as '64KiB', got None"),
        (units.parse_bytes, True, "expected a size such as '64KiB', got True"),
        (units.parse_frequency, "2.6", "'2.6' has no unit"),
        (units.parse_frequency, "2.6Ghz", "unknown unit 'Ghz' for a frequency"),
        (units.parse_bandwidth, "100 GBs", "unknown unit 'GBs' for a bandwidth"),
        (units.parse_duration, "90", "'90' has no unit: write a duration"),
        (units.parse_cycles, "2.5cycles", "not a whole number of cycles"),
        (units.parse_bytes, "infKiB", "cannot parse 'infKiB'"),
    ],
)
def test_rejections_say_what_was_expected(parse, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(value)


@given(st.integers(min_value=1, max_value=2**50))
def test_bytes_text_round_trips(num_bytes: int) -> None:
    assert units.parse_bytes(units.bytes_text(num_bytes)) == num_bytes


@given(st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_bandwidth_and_frequency_text_round_trip(value: float) -> None:
    assert units.parse_bandwidth(units.bandwidth_text(value)) == value
    assert units.parse_frequency(units.frequency_text(value)) == value


@given(st.floats(min_value=1e-12, max_value=10.0, allow_nan=False))
def test_duration_text_round_trips(seconds: float) -> None:
    assert units.parse_duration(units.duration_text(seconds)) == seconds


def test_canonical_spellings_are_the_familiar_ones() -> None:
    assert units.bytes_text(22 * 2**20) == "22MiB"
    assert units.bandwidth_text(21.333e9) == "21.333GB/s"
    assert units.frequency_text(1.53e9) == "1.53GHz"
    assert units.duration_text(90e-9) == "90ns"


def test_human_formats_carry_units() -> None:
    assert units.format_bytes(38.2e9) == "38.2 GB"
    assert units.format_bytes(1024, binary=True) == "1 KiB"
    assert units.format_bandwidth(128e9) == "128 GB/s"
    assert units.format_flop_rate(2.6624e12) == "2.662 TFLOP/s"
    assert units.format_duration(0.0123) == "12.3 ms"
    assert units.format_count(2.834e9, "MAC") == "2.834 GMAC"
