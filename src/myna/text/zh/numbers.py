"""Numeric expressions in Chinese text: arithmetic, powers, fractions, percentages, phone numbers,
ranges, signed and decimal numbers, version strings, counted nouns and bare digit strings.

Patterns run on text whose digits are ASCII. Several carry `(?<![0-9])` before their first digit
run: a match can never start inside a digit run when one starting at the run's first digit is
possible, so this only prunes hopeless attempts and keeps long digit runs linear.
"""

import re

from myna.text.zh.verbalize import read_digits, read_number

_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_SUPERSCRIPT_VALUES = dict(zip(_SUPERSCRIPTS, "0123456789xyn", strict=True))
_OPERATOR_WORDS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}


def _operand(first_digit_guard: str) -> str:
    """Pattern of an arithmetic operand: signed number, bare fraction or one Latin letter, with powers."""
    powers = f"[{_SUPERSCRIPTS}]*"
    return f"(?:-?{first_digit_guard}[0-9]+(?:\\.[0-9]+)?{powers}|\\.[0-9]+{powers}|[A-Za-z]{powers})"


# 1+2=3, x²+y²=z², a-b: the operator between two operands is read out (= as 等于).
ARITHMETIC = re.compile(f"(?P<left>{_operand('(?<![0-9])')})(?P<op>[-+×÷=])(?P<right>{_operand('')})")
POWER = re.compile(f"[{_SUPERSCRIPTS}]+")
FRACTION = re.compile(r"(?P<minus>-?)(?<![0-9])(?P<numerator>[0-9]+)/(?P<denominator>[0-9]+)")
PERCENTAGE = re.compile(r"(?P<minus>-?)(?<![0-9])(?P<value>[0-9]+(?:\.[0-9]+)?)%")

MOBILE_PHONE = re.compile(r"(?<![0-9])(?:\+?86 ?)?1(?:[38][0-9]|5[0-35-9]|7[678]|9[89])[0-9]{8}(?![0-9])")
LANDLINE_PHONE = re.compile(r"(?<![0-9])(?:0(?:10|2[1-3]|[3-9][0-9]{2})-?)?[1-9][0-9]{6,7}(?![0-9])")
SERVICE_PHONE = re.compile(r"400-?[0-9]{3}-?[0-9]{4}")

# 3~5, 1.5~2.5: not touching other digits or operators on either side.
NUMBER_RANGE = re.compile(
    r"(?<![0-9+\-×÷=])"
    r"(?P<start>-?[0-9]+(?:\.[0-9]+)?)"
    r"[-~]"
    r"(?P<end>-?[0-9]+(?:\.[0-9]+)?)"
    r"(?![0-9+\-×÷=])"
)
NEGATIVE_INTEGER = re.compile(r"-(?P<value>[0-9]+)")
VERSION = re.compile(r"(?<![0-9])[0-9]+(?:\.[0-9]+){2,}")
DECIMAL = re.compile(r"(?P<minus>-?)(?<![0-9])(?P<value>[0-9]+\.[0-9]+)|(?P<bare>\.[0-9]+)")
NUMBER = re.compile(r"(?P<minus>-?)(?P<value>[0-9]+(?:\.[0-9]+)?)|(?P<bare>\.[0-9]+)")
DIGIT_STRING = re.compile(r"[0-9]{3,}")

# Measure words (量词) that make a preceding integer a count: 两个, 十二小时, 三千克.
# Any text starting with one of these single characters or words qualifies.
_MEASURE_CHARS = (
    "万丈世丘丝两个丸亩人亿代令件伏位例元冬出刀分列刻勺匹千升单卮厘双叠口只台合名吨周啖回场块坡堂"
    "堆堵墙壳壶处夏夜天头套季客家寸对寻封尺尾层山岁岭常幅幢平年床座张忽户所手扎打批把担挑捆撮支斗"
    "斛斤方日旬时春曲更月本朵条杯板枚枝架栋株根桶棵段毛毫江泡注溪炮煲片瓶百盆盏盒盘目石砣碗碟秋秒"
    "程窠笼管箩箱篇篮簋米粒纪线罐网罗群脚腔艘袋袭角课贯贴趟跳身辆辈道里针钟钧钱钵铢铺锅锱间阙队阵"
    "面页顶项颗首"
)
_MEASURE_WORDS = ("公分", "十吨", "小时", "微克", "微米", "美元")
COUNTED = re.compile(
    r"(?<![0-9])(?P<count>[0-9]+)(?P<about>[多余几+])?"
    f"(?=[{_MEASURE_CHARS}]|{'|'.join(_MEASURE_WORDS)})"
)


def say_operator(found: re.Match[str]) -> str:
    """Spoken form of an ARITHMETIC match: only the operator is read."""
    return found["left"] + _OPERATOR_WORDS[found["op"]] + found["right"]


def spell_arithmetic(sentence: str) -> str:
    """Read operators between operands until none is left (chains need several passes)."""
    while True:
        sentence, replaced = ARITHMETIC.subn(say_operator, sentence)
        if not replaced:
            return sentence


def say_power(found: re.Match[str]) -> str:
    """Spoken form of a POWER match: ² -> 的2次方 (the digit is read later)."""
    return "的" + "".join(_SUPERSCRIPT_VALUES[ch] for ch in found.group()) + "次方"


def _minus(found: re.Match[str]) -> str:
    return "负" if found["minus"] else ""


def say_fraction(found: re.Match[str]) -> str:
    """Spoken form of a FRACTION match: 3/4 -> 四分之三."""
    return _minus(found) + read_number(found["denominator"]) + "分之" + read_number(found["numerator"])


def say_percentage(found: re.Match[str]) -> str:
    """Spoken form of a PERCENTAGE match: -3.5% -> 负百分之三点五."""
    return _minus(found) + "百分之" + read_number(found["value"])


def say_mobile_phone(found: re.Match[str]) -> str:
    """Spoken form of a MOBILE_PHONE match, digit by digit with 1 as 幺; +86 is a separate part."""
    return "，".join(read_digits(part, alt_one=True) for part in found.group().strip("+").split())


def say_landline_phone(found: re.Match[str]) -> str:
    """Spoken form of a LANDLINE_PHONE or SERVICE_PHONE match, one part per dash."""
    return "，".join(read_digits(part, alt_one=True) for part in found.group().split("-"))


def _signed(number: str) -> str:
    return "负" + read_number(number[1:]) if number.startswith("-") else read_number(number)


def say_number_range(found: re.Match[str]) -> str:
    """Spoken form of a NUMBER_RANGE match: 3~5 -> 三到五."""
    return _signed(found["start"]) + "到" + _signed(found["end"])


def say_negative_integer(found: re.Match[str]) -> str:
    """Spoken form of a NEGATIVE_INTEGER match: -10 -> 负十."""
    return "负" + read_number(found["value"])


def say_version(found: re.Match[str]) -> str:
    """Spoken form of a VERSION match, digit by digit: 1.2.10 -> 一点二点一零."""
    return "点".join(read_digits(part) for part in found.group().split("."))


def say_number(found: re.Match[str]) -> str:
    """Spoken form of a DECIMAL or NUMBER match; a bare fraction (.5) ignores any sign."""
    if found["bare"]:
        return read_number(found["bare"])
    return _minus(found) + read_number(found["value"])


def say_counted(found: re.Match[str]) -> str:
    """Spoken form of a COUNTED match: 2个 -> 两个, 20+个 -> 二十多个."""
    count = read_number(found["count"])
    about = found["about"] or ""
    return ("两" if count == "二" else count) + ("多" if about == "+" else about)


def say_digit_string(found: re.Match[str]) -> str:
    """Spoken form of a DIGIT_STRING match: 100 -> 幺零零."""
    return read_digits(found.group(), alt_one=True)
