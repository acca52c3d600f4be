"""The SSML subset: every element, nesting, errors with line and column, hostile XML."""

import math

import pytest

from myna.errors import InputError
from myna.text import sayas, ssml
from myna.text.ssml import Break, Span, SSMLError, Style


def parse(body: str, lang: str = "en") -> list:
    return ssml.parse(f"<speak>{body}</speak>", lang)


def test_plain_speak_is_one_span_and_whitespace_collapses():
    assert parse("Hello\n     there.") == [Span("Hello there.")]
    assert ssml.looks_like_ssml('  <?xml version="1.0"?>\n<speak>x</speak>')
    assert not ssml.looks_like_ssml("Say <speak> to me")


@pytest.mark.parametrize(("attrs", "seconds"), [('time="500ms"', 0.5), ('time="1.5s"', 1.5), ('strength="weak"', 0.2),
                                                ("", 0.4), ('strength="none"', 0.0)])
def test_break_lengths(attrs, seconds):
    assert parse(f"One <break {attrs}/> two") == [Span("One "), Break(seconds), Span(" two")]


def test_breaks_in_a_row_add_up():
    assert parse('a<break time="200ms"/><break time="300ms"/>b')[1] == Break(0.5)


def test_prosody_values_and_nesting_combine():
    items = parse('<prosody rate="slow" pitch="+2st" volume="-6dB">a <prosody rate="80%" pitch="+10%" '
                  'volume="loud">b</prosody></prosody>')
    outer, inner = items[0].style, items[1].style
    assert outer == Style(rate=0.75, pitch=2.0, volume=-6.0)
    assert inner.rate == pytest.approx(0.6) and inner.volume == 0.0
    assert inner.pitch == pytest.approx(2.0 + 12 * math.log2(1.1))
    assert parse('<prosody rate="+20%">x</prosody>')[0].style.rate == pytest.approx(1.2)
    assert parse('<prosody volume="silent">x</prosody>')[0].style.volume == -math.inf


def test_emphasis_levels_and_default():
    assert parse("<emphasis>big</emphasis>")[0].style.emphasis == "moderate"
    items = parse('a <emphasis level="strong">big <emphasis level="reduced">small</emphasis></emphasis>')
    assert [i.style.emphasis for i in items] == [None, "strong", "reduced"]


def test_lang_sub_phoneme_and_say_as():
    items = parse('<lang xml:lang="zh-CN">你好</lang> <sub alias="World Wide Web">WWW</sub> '
                  '<phoneme alphabet="arpabet" ph="t ah0 m ey1 t ow2">tomato</phoneme>'
                  '<say-as interpret-as="cardinal">1,234</say-as>')
    assert items[0] == Span("你好", "zh")
    assert items[1].text == " World Wide Web "
    assert items[2] == Span("tomato", "en", Style(), ("T", "AH0", "M", "EY1", "T", "OW2"))
    assert items[3].text == "one thousand, two hundred thirty-four"
    assert ssml.parse('<speak xml:lang="zh"><phoneme alphabet="pinyin" ph="ni3 hao3">你好</phoneme></speak>')[0] \
        .phones == ("n", "i3", "h", "ao3")


@pytest.mark.parametrize(("kind", "text", "lang", "spoken"), [
    ("characters", "AB9", "en", "A B nine"),
    ("characters", "A12", "zh", "A一二"),
    ("cardinal", "-42", "en", "minus forty-two"),
    ("cardinal", "42", "zh", "42"),
    ("ordinal", "21", "en", "twenty-first"),
    ("ordinal", "3", "zh", "第3"),
    ("ordinal", "3", "ja", "3番目"),
    ("date", "2024-05-01", "en", "May first, twenty twenty-four"),
    ("date", "2024-05-01", "zh", "2024年5月1日"),
    ("telephone", "555-0123", "en", "five five five, oh one two three"),
    ("telephone", "138 0013", "zh", "幺三八，零零幺三"),
])
def test_say_as(kind, text, lang, spoken):
    assert sayas.interpret(text, kind, lang) == spoken


def test_say_as_date_formats():
    assert sayas.interpret("05/01/2024", "date", "en", "mdy") == "May first, twenty twenty-four"
    assert sayas.interpret("1/5", "date", "en", "dm") == "May first"
    with pytest.raises(InputError, match="format"):
        sayas.interpret("05/01/2024", "date", "en")
    with pytest.raises(InputError, match="no such month"):
        sayas.interpret("2024-13-01", "date", "en")


@pytest.mark.parametrize(("markup", "line", "column", "words"), [
    ("<speak>\n  <foo/>\n</speak>", 2, 3, "unsupported element <foo>"),
    ("<speak>\n<break time='5'/></speak>", 2, 1, "ms or s"),
    ("<speak><break time='11s'/></speak>", 1, 8, "longer than"),
    ("<speak>\n\n  <prosody rate='fastish'>x</prosody></speak>", 3, 3, "prosody rate"),
    ("<speak><prosody pitch='+3Hz'>x</prosody></speak>", 1, 8, "prosody pitch"),
    ("<speak><prosody volume='+30dB'>x</prosody></speak>", 1, 8, "limit is +20 dB"),
    ("<speak><emphasis level='huge'>x</emphasis></speak>", 1, 8, "emphasis level"),
    ("<speak><say-as interpret-as='currency'>1</say-as></speak>", 1, 8, "interpret-as"),
    ("<speak>\n <say-as interpret-as='cardinal'>ten</say-as></speak>", 2, 2, "whole number"),
    ("<speak><lang xml:lang='fr'>x</lang></speak>", 1, 8, "xml:lang 'fr'"),
    ("<speak><lang>x</lang></speak>", 1, 8, "needs xml:lang"),
    ("<speak><sub>x</sub></speak>", 1, 8, "needs alias"),
    ("<speak><phoneme ph='ZZ9'>x</phoneme></speak>", 1, 8, "not a phoneme"),
    ("<speak><phoneme alphabet='ipa' ph='a'>x</phoneme></speak>", 1, 8, "not supported"),
    ("<speak><break color='red'/></speak>", 1, 8, "no attribute 'color'"),
    ("<speak><say-as interpret-as='cardinal'>1<break/></say-as></speak>", 1, 41, "holds text only"),
    ("<voice>x</voice>", 1, 1, "root element must be <speak>"),
    ("<speak>\n  unclosed <emphasis>x</speak>", 2, 25, "not well-formed"),
    ("<speak>a &amp b</speak>", 1, 14, "not well-formed"),
])
def test_errors_name_line_and_column(markup, line, column, words):
    with pytest.raises(SSMLError) as info:
        ssml.parse(markup)
    assert (info.value.line, info.value.column) == (line, column)
    assert words in str(info.value) and str(info.value).startswith(f"SSML line {line}, column {column}: ")
    assert isinstance(info.value, InputError)


def test_billion_laughs_is_refused_without_expanding():
    bomb = '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    bomb += "".join(f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
                    for i in range(1, 10))
    bomb += "]>\n<speak>&lol9;</speak>"
    with pytest.raises(SSMLError, match="document type declarations and entities are not allowed"):
        ssml.parse(bomb)


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xxe = f'<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY xxe SYSTEM "file://{secret}">]><speak>&xxe;</speak>'
    with pytest.raises(SSMLError) as info:
        ssml.parse(xxe)
    assert "TOP SECRET" not in str(info.value)
    with pytest.raises(SSMLError, match="undefined entity"):
        ssml.parse("<speak>&xxe;</speak>")  # no DTD: an entity reference is simply undefined
