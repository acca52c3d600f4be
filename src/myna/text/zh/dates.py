"""Dates and clock times in Chinese text: 2024年5月1日, 2024-05-01, 12:30:45, 8:30-12:30."""

import re

from myna.text.zh.verbalize import read_cardinal, read_clock_field, read_digits, read_number

# 2024年5月1日 / 24年 / 2024年05月 / 2024年5月1号: month and day are each optional.
DATE_WITH_CHARS = re.compile(
    r"(?P<year>[0-9]{4}|[0-9]{2})年"
    r"(?:(?P<month>0?[1-9]|1[0-2])月)?"
    r"(?:(?P<day>0?[1-9]|[12][0-9]|3[01])(?P<day_mark>[日号]))?"
)

# 2024-05-01, 2024/05/01, 2024.05.01, 2024 05 01: two-digit month and day, one separator used twice.
DATE_WITH_SEPARATORS = re.compile(
    r"(?P<year>[0-9]{4})(?P<sep>[-/. ])(?P<month>0[1-9]|1[0-2])(?P=sep)(?P<day>0[1-9]|[12][0-9]|3[01])"
)


def _clock(tag: str) -> str:
    """Pattern of one h:mm[:ss] clock reading; group names end with `tag`."""
    return (
        rf"(?P<hour{tag}>[01]?[0-9]|2[0-3])"
        rf":(?P<minute{tag}>[0-5][0-9])"
        rf"(?::(?P<second{tag}>[0-5][0-9]))?"
    )


CLOCK_TIME = re.compile(_clock(""))
CLOCK_RANGE = re.compile(_clock("") + "[~-]" + _clock("_end"))


def say_date_with_chars(found: re.Match[str]) -> str:
    """Spoken form of a DATE_WITH_CHARS match; the year is read digit by digit."""
    spoken = read_digits(found["year"]) + "年"
    if found["month"]:
        spoken += read_cardinal(found["month"]) + "月"
    if found["day"]:
        spoken += read_cardinal(found["day"]) + found["day_mark"]
    return spoken


def say_date_with_separators(found: re.Match[str]) -> str:
    """Spoken form of a DATE_WITH_SEPARATORS match."""
    return (
        read_digits(found["year"])
        + "年"
        + read_cardinal(found["month"])
        + "月"
        + read_cardinal(found["day"])
        + "日"
    )


def _say_clock(hour: str, minute: str, second: str | None, half: bool) -> str:
    """Read one clock time; `half` says a non-zero minute field is read 半."""
    spoken = read_number(hour) + "点"
    if minute.lstrip("0"):
        spoken += "半" if half else read_clock_field(minute) + "分"
    if second and second.lstrip("0"):
        spoken += read_clock_field(second) + "秒"
    return spoken


def say_clock_time(found: re.Match[str]) -> str:
    """Spoken form of a CLOCK_TIME match: 12:30 -> 十二点半."""
    half = int(found["minute"]) == 30
    return _say_clock(found["hour"], found["minute"], found["second"], half)


def say_clock_range(found: re.Match[str]) -> str:
    """Spoken form of a CLOCK_RANGE match, joined by 至.

    As upstream, whether the end time reads 半 depends on the start time's minutes
    (8:30-9:15 -> 八点半至九点半).
    """
    half = int(found["minute"]) == 30
    start = _say_clock(found["hour"], found["minute"], found["second"], half)
    end = _say_clock(found["hour_end"], found["minute_end"], found["second_end"], half)
    return start + "至" + end
