"""Reading ASCII digit strings aloud in Mandarin: digit by digit, as cardinals, as decimals.

These helpers reproduce the readings of upstream GPT-SoVITS's Chinese normalizer (itself from
PaddleSpeech), including its quirks: "10" is read 十 but a leading 一十 is kept inside larger
numbers (一亿零一十二万...), and trailing zeros of a fraction collapse to one 零 (3.20 -> 三点二零).
"""

ZH_DIGITS = "零一二三四五六七八九"

# Place units below 亿, largest first: (number of digits to their right, character).
_SMALL_UNITS = ((4, "万"), (3, "千"), (2, "百"), (1, "十"))
_YI_GROUP = 8  # digits per 亿 group


def read_digits(digits: str, alt_one: bool = False) -> str:
    """Read an ASCII digit string one digit at a time; `alt_one` reads 1 as 幺 (phone numbers)."""
    spoken = "".join(ZH_DIGITS[ord(ch) - 48] for ch in digits)
    return spoken.replace("一", "幺") if alt_one else spoken


def _read_group(digits: str) -> str:
    """Read at most eight digits (leading zeros allowed) with the units 十 百 千 万.

    A leading run of zeros before a significant digit is read as one 零 (e.g. "0105" -> 零一百零五).
    """
    significant = digits.lstrip("0")
    if not significant:
        return ""
    if len(significant) == 1:
        single = ZH_DIGITS[ord(significant) - 48]
        return "零" + single if len(significant) < len(digits) else single
    for width, unit in _SMALL_UNITS:
        if width < len(significant):
            return _read_group(digits[:-width]) + unit + _read_group(digits[-width:])
    raise AssertionError("unreachable: a significant digit run of length >= 2 always has a unit")


def read_cardinal(digits: str) -> str:
    """Read an ASCII digit string as an integer: "10105" -> 一万零一百零五, "" -> ""."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return ZH_DIGITS[0]
    # Split into 亿 groups of eight digits counted from the right; the head keeps no leading zero.
    head_len = len(digits) % _YI_GROUP or _YI_GROUP
    groups = [digits[:head_len]]
    groups += [digits[start : start + _YI_GROUP] for start in range(head_len, len(digits), _YI_GROUP)]
    spoken = "亿".join(_read_group(group) for group in groups)
    return spoken[1:] if spoken.startswith("一十") else spoken


def read_number(number: str) -> str:
    """Read an unsigned ASCII number with at most one decimal point: "3.20" -> 三点二零, ".5" -> 零点五."""
    whole, _, fraction = number.partition(".")
    spoken = read_cardinal(whole)
    if fraction.endswith("0"):
        fraction = fraction.rstrip("0") + "0"
    if fraction:
        spoken = (spoken or ZH_DIGITS[0]) + "点" + read_digits(fraction)
    return spoken


def read_clock_field(field: str) -> str:
    """Read a minute or second field: "05" -> 零五, "45" -> 四十五."""
    spoken = read_number(field.lstrip("0"))
    return ZH_DIGITS[0] + spoken if field.startswith("0") else spoken
