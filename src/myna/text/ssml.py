"""An SSML subset -> a plan: text spans (with language, prosody and emphasis) and breaks.

Supported: `<speak>`, `<p>`, `<s>`, `<break time|strength>`, `<prosody rate pitch volume>`,
`<emphasis level>`, `<say-as interpret-as="characters|cardinal|ordinal|date|telephone">`,
`<lang xml:lang>`, `<sub alias>` and `<phoneme alphabet ph>`. Markup is parsed with defusedxml, which
refuses document type declarations and entities, so entity expansion ("billion laughs") and external
entities cannot happen. Every error names the line and column of the offending markup.
"""

from __future__ import annotations

import math
import re
import xml.sax
from dataclasses import dataclass, replace

from myna.errors import InputError
from myna.text import sayas
from myna.text import symbols as sym

MAX_BREAK_SECONDS = 10.0
EMPHASIS_LEVELS = ("strong", "moderate", "none", "reduced")
_BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.2, "medium": 0.4, "strong": 0.7, "x-strong": 1.0}
_RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
_PITCHES = {"x-low": -4.0, "low": -2.0, "medium": 0.0, "default": 0.0, "high": 2.0, "x-high": 4.0}
_VOLUMES = {"silent": -math.inf, "x-soft": -12.0, "soft": -6.0, "medium": 0.0, "default": 0.0, "loud": 6.0,
            "x-loud": 12.0}
_TIME = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*")
_SIGNED = r"\s*([+-]?\d+(?:\.\d+)?)\s*"
_ATTRIBUTES = {
    "speak": {"version", "xmlns", "xml:lang", "xmlns:xsi", "xsi:schemaLocation"},
    "p": {"xml:lang"}, "s": {"xml:lang"},
    "break": {"time", "strength"},
    "prosody": {"rate", "pitch", "volume"},
    "emphasis": {"level"},
    "say-as": {"interpret-as", "format", "detail"},
    "lang": {"xml:lang"},
    "sub": {"alias"},
    "phoneme": {"alphabet", "ph"},
}
# Text modes (myna.engine.textprep) whose language a say-as or phoneme element can be read in.
_BASE_LANGUAGE = {"zh": "zh", "all_zh": "zh", "en": "en", "ja": "ja", "all_ja": "ja", "auto": "en"}


class SSMLError(InputError):
    """Invalid SSML markup; `line` and `column` (1-based) point at it."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"SSML line {line}, column {column}: {message}")
        self.line, self.column = line, column


@dataclass(frozen=True)
class Style:
    """How a span is spoken: rate (x speed), pitch (semitones), volume (dB) and emphasis level."""

    rate: float = 1.0
    pitch: float = 0.0
    volume: float = 0.0
    emphasis: str | None = None

    @property
    def plain(self) -> bool:
        """True when the span is spoken as the model makes it."""
        return self.rate == 1.0 and self.pitch == 0.0 and self.volume == 0.0 and self.emphasis in (None, "none")


@dataclass(frozen=True)
class Span:
    """Text to speak; `lang` "" means the request's language; `phones` set: these symbols, not the text."""

    text: str
    lang: str = ""
    style: Style = Style()
    phones: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Break:
    """Silence of `seconds` in place of the usual pause."""

    seconds: float


PlanItem = Span | Break


def looks_like_ssml(text: str) -> bool:
    """True when `text` is an SSML document (it starts with `<speak`, after an optional XML declaration)."""
    head = text.lstrip()
    if head.startswith("<?xml"):
        head = head[head.find("?>") + 2 :].lstrip() if "?>" in head else head
    return head.startswith("<speak")


def plain_plan(text: str) -> list[PlanItem]:
    """The plan of plain text: one span in the request's language."""
    return [Span(text)]


def parse(markup: str, lang: str = "auto", version: str = "v2") -> list[PlanItem]:
    """Parse an SSML document into spans and breaks; `lang` is the request's text mode (for say-as)."""
    handler = _Handler(lang, version)
    import defusedxml.sax

    try:
        defusedxml.sax.parseString(markup.encode("utf-8"), handler, forbid_dtd=True)
    except SSMLError:
        raise
    except xml.sax.SAXParseException as exc:
        raise SSMLError(f"not well-formed XML ({exc.getMessage()})", exc.getLineNumber(),
                        exc.getColumnNumber() + 1) from None
    except Exception as exc:  # defusedxml's DTDForbidden / EntitiesForbidden / ExternalReferenceForbidden
        line, column = handler.position()
        raise SSMLError(f"document type declarations and entities are not allowed ({type(exc).__name__})",
                        line, column) from None
    return _merge(handler.items)


def _merge(items: list[PlanItem]) -> list[PlanItem]:
    """Join neighbouring spans that are spoken alike; drop blank spans."""
    merged: list[PlanItem] = []
    for item in items:
        last = merged[-1] if merged else None
        if isinstance(item, Span) and item.phones is None and isinstance(last, Span) and last.phones is None \
                and (last.lang, last.style) == (item.lang, item.style):
            merged[-1] = replace(last, text=last.text + item.text)
        elif isinstance(item, Break) and isinstance(last, Break):
            merged[-1] = Break(min(MAX_BREAK_SECONDS, last.seconds + item.seconds))
        else:
            merged.append(item)
    out = [item for item in merged if not (isinstance(item, Span) and item.phones is None and not item.text.strip())]
    return [replace(i, text=re.sub(r"\s+", " ", i.text)) if isinstance(i, Span) else i for i in out]


@dataclass
class _Scope:
    tag: str
    lang: str
    style: Style
    text: list[str] | None = None  # collected text of say-as / sub / phoneme
    attrs: dict | None = None
    line: int = 0
    column: int = 0


class _Handler(xml.sax.handler.ContentHandler):
    def __init__(self, lang: str, version: str):
        super().__init__()
        self.items: list[PlanItem] = []
        self.stack: list[_Scope] = []
        self.request_lang = lang
        self.version = version
        self.locator = None

    def setDocumentLocator(self, locator) -> None:  # noqa: N802 (SAX's name)
        self.locator = locator

    def position(self) -> tuple[int, int]:
        if self.locator is None:
            return 1, 1
        return self.locator.getLineNumber() or 1, (self.locator.getColumnNumber() or 0) + 1

    def fail(self, message: str) -> None:
        raise SSMLError(message, *self.position())

    def startElement(self, name: str, attrs) -> None:  # noqa: N802
        attrs = dict(attrs.items())
        if not self.stack and name != "speak":
            self.fail(f"the root element must be <speak>, not <{name}>")
        if name not in _ATTRIBUTES:
            self.fail(f"unsupported element <{name}>; supported: {', '.join(sorted(_ATTRIBUTES))}")
        unknown = sorted(set(attrs) - _ATTRIBUTES[name])
        if unknown:
            self.fail(f"<{name}> has no attribute {unknown[0]!r}; it takes {', '.join(sorted(_ATTRIBUTES[name]))}")
        parent = self.stack[-1] if self.stack else _Scope("", "", Style())
        if name == "speak" and self.stack:
            self.fail("<speak> cannot be nested")
        if parent.text is not None:
            self.fail(f"<{parent.tag}> holds text only, not <{name}>")
        scope = _Scope(name, parent.lang, parent.style, line=self.position()[0], column=self.position()[1])
        if "xml:lang" in attrs:
            scope.lang = self._language(attrs["xml:lang"])
        elif name == "lang":
            self.fail("<lang> needs xml:lang (en, zh or ja)")
        if name == "break":
            self.items.append(Break(self._break(attrs)))
        elif name == "prosody":
            scope.style = self._prosody(parent.style, attrs)
        elif name == "emphasis":
            level = attrs.get("level", "moderate")
            if level not in EMPHASIS_LEVELS:
                self.fail(f"emphasis level {level!r} is not one of {', '.join(EMPHASIS_LEVELS)}")
            scope.style = replace(parent.style, emphasis=level)
        elif name in ("say-as", "sub", "phoneme"):
            scope.text, scope.attrs = [], attrs
            self._check_leaf(name, attrs)
        self.stack.append(scope)

    def endElement(self, name: str) -> None:  # noqa: N802
        scope = self.stack.pop()
        if scope.text is None:
            return
        content = "".join(scope.text)
        lang = scope.lang or _BASE_LANGUAGE.get(self.request_lang, "en")
        if name == "sub":
            self.items.append(Span(scope.attrs["alias"], scope.lang, scope.style))
        elif name == "say-as":
            try:
                spoken = sayas.interpret(content, scope.attrs["interpret-as"], lang, scope.attrs.get("format"))
            except InputError as exc:
                raise SSMLError(str(exc), scope.line, scope.column) from None
            self.items.append(Span(spoken, scope.lang, scope.style))
        else:
            phones = self._phones(scope, lang)
            self.items.append(Span(content, lang, scope.style, phones))

    def characters(self, content: str) -> None:
        if not self.stack:
            return
        scope = self.stack[-1]
        if scope.text is not None:
            scope.text.append(content)
        elif scope.tag == "break":
            if content.strip():
                self.fail("<break> must be empty")
        else:
            self.items.append(Span(content, scope.lang, scope.style))

    # -- attribute values ----------------------------------------------------------------------

    def _language(self, value: str) -> str:
        code = value.strip().lower().replace("_", "-").split("-")[0]
        lang = {"en": "en", "zh": "zh", "cmn": "zh", "ja": "ja", "jp": "ja"}.get(code)
        if lang is None:
            self.fail(f"xml:lang {value!r} is not a language myna speaks (en, zh, ja)")
        return lang

    def _break(self, attrs: dict) -> float:
        if "time" in attrs:
            match = _TIME.fullmatch(attrs["time"])
            if match is None:
                self.fail(f"break time {attrs['time']!r} must be a number with ms or s, e.g. 500ms or 1.5s")
            seconds = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
            if seconds > MAX_BREAK_SECONDS:
                self.fail(f"break time {attrs['time']!r} is longer than {MAX_BREAK_SECONDS:g} s")
            return seconds
        strength = attrs.get("strength", "medium")
        if strength not in _BREAK_STRENGTHS:
            self.fail(f"break strength {strength!r} is not one of {', '.join(_BREAK_STRENGTHS)}")
        return _BREAK_STRENGTHS[strength]

    def _prosody(self, style: Style, attrs: dict) -> Style:
        rate, pitch, volume = style.rate, style.pitch, style.volume
        if "rate" in attrs:
            rate *= self._rate(attrs["rate"])
            if not 0.25 <= rate <= 4.0:
                self.fail(f"prosody rate makes the speed {rate:g}; it must stay between 0.25 and 4")
        if "pitch" in attrs:
            pitch += self._pitch(attrs["pitch"])
            if abs(pitch) > 12:
                self.fail(f"prosody pitch adds up to {pitch:+g} semitones; the limit is +-12")
        if "volume" in attrs:
            volume += self._volume(attrs["volume"])
            if volume > 20:
                self.fail(f"prosody volume adds up to {volume:+g} dB; the limit is +20 dB")
        return replace(style, rate=rate, pitch=pitch, volume=volume)

    def _rate(self, value: str) -> float:
        value = value.strip()
        if value in _RATES:
            return _RATES[value]
        match = re.fullmatch(_SIGNED + "(%?)", value)
        if match is None:
            self.fail(f"prosody rate {value!r}: use x-slow..x-fast, a percentage (80%, +20%) or a factor (1.2)")
        number = float(match.group(1))
        if match.group(2):
            factor = 1 + number / 100 if value[0] in "+-" else number / 100
        else:
            factor = number
        if factor <= 0:
            self.fail(f"prosody rate {value!r} must be above zero")
        return factor

    def _pitch(self, value: str) -> float:
        value = value.strip()
        if value in _PITCHES:
            return _PITCHES[value]
        match = re.fullmatch(_SIGNED + "(st|%)", value)
        if match is None:
            self.fail(f"prosody pitch {value!r}: use x-low..x-high, semitones (+2st) or a percentage (+10%)")
        number = float(match.group(1))
        if match.group(2) == "st":
            return number
        if number <= -100:
            self.fail(f"prosody pitch {value!r} must stay above -100%")
        return 12 * math.log2(1 + number / 100)

    def _volume(self, value: str) -> float:
        value = value.strip()
        if value in _VOLUMES:
            return _VOLUMES[value]
        match = re.fullmatch(_SIGNED + "dB", value)
        if match is None:
            self.fail(f"prosody volume {value!r}: use silent, x-soft..x-loud or decibels (+6dB, -3dB)")
        return float(match.group(1))

    def _check_leaf(self, name: str, attrs: dict) -> None:
        if name == "sub" and "alias" not in attrs:
            self.fail("<sub> needs alias, the text to speak")
        if name == "say-as":
            kind = attrs.get("interpret-as")
            if kind not in sayas.KINDS:
                self.fail(f"say-as interpret-as {kind!r} is not one of {', '.join(sayas.KINDS)}")
        if name == "phoneme" and "ph" not in attrs:
            self.fail("<phoneme> needs ph, the pronunciation")

    def _phones(self, scope: _Scope, lang: str) -> tuple[str, ...]:
        alphabet = scope.attrs.get("alphabet", "x-myna")
        ph = scope.attrs["ph"].split()
        try:
            phones = _to_symbols(ph, alphabet, lang)
        except InputError as exc:
            raise SSMLError(str(exc), scope.line, scope.column) from None
        known = sym.symbol_to_id(self.version)
        unknown = [p for p in phones if p not in known]
        if unknown or not phones:
            raise SSMLError(f"phoneme ph {scope.attrs['ph']!r}: {unknown[0] if unknown else 'nothing'} is not a "
                            f"phoneme of the {self.version} symbol table", scope.line, scope.column)
        return tuple(phones)


def _to_symbols(ph: list[str], alphabet: str, lang: str) -> list[str]:
    """The symbol-table phonemes of a `<phoneme>` pronunciation."""
    if alphabet == "x-myna":
        return ph
    if alphabet == "arpabet":
        if lang != "en":
            raise InputError(f"alphabet arpabet is for English text, not {lang}")
        return [p.upper() for p in ph]
    if alphabet == "pinyin":
        if lang != "zh":
            raise InputError(f"alphabet pinyin is for Chinese text, not {lang}")
        from myna.text.zh.pinyin import syllable_table

        phones = []
        for syllable in ph:
            body, tone = syllable[:-1].lower().replace("ü", "v"), syllable[-1:]
            pair = syllable_table().get(body)
            if pair is None or tone not in "12345":
                raise InputError(f"pinyin {syllable!r} is not a syllable with a tone digit 1-5 (e.g. hao3)")
            phones += [pair[0], pair[1] + tone]
        return phones
    raise InputError(f"phoneme alphabet {alphabet!r} is not supported; use arpabet (en), pinyin (zh) or x-myna "
                     "(the model's own symbols, any language)")
