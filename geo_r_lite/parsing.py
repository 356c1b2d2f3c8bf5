"""Parse a Chain-of-Region completion into a typed answer; the one parser for rewards and metrics.

Training rewards and evaluation metrics both read ``parse_answer(...).lat/.lon``, so the training
signal and the reported figures cannot drift apart. ``parse_answer`` never raises.

Well-formed (``format_ok``), the shape ``geo_r_lite.prompts`` asks for:

- at most one ``<think>...</think>`` block, before exactly one ``<answer>...</answer>`` block,
  and nothing but whitespace outside them (tags are lower case, as in the prompt);
- inside the answer, the five lines ``Continent:``, ``Country:``, ``Region:``, ``City:``,
  ``Coordinates:`` once each, in that (chain) order, no other non-blank line, no empty value;
- coordinates latitude first, in range: decimal degrees ``(48.85, 2.35)``, hemisphere letters
  or words ``43.45° N, 142.61° E`` (then the letters say which is which, and a sign together with
  a letter is rejected), or degrees-minutes-seconds ``48°51'24"N, 2°21'8"E``.

``Unknown`` (or ``N/A``, ``None``) for a place level is well formed and parses to ``None``.
Whether ``<think>`` is required is the format reward's choice (``ParsedAnswer.think`` is ``None``
when the block is missing or broken); ``format_ok`` is about everything else.

What wins when parsing anyway (``format_ok`` False, fields still filled where possible):

- text outside an ``<answer>`` block never counts (a "Coordinates:" line in the reasoning is not
  an answer);
- several answer blocks: the LAST complete block wins (the final word after any drafts), read
  from the last ``<answer>`` before the last ``</answer>`` that has one;
- no closed block but an ``<answer>`` tag (a truncated completion): the text after the last tag,
  without its final unterminated line, which may have been cut mid-number;
- a field given twice in the block: its last line wins;
- a malformed ``Coordinates:`` value: the first latitude/longitude pair found in its first 256
  characters, if any (range-checked the same way).

A swapped but in-range pair is NOT guessed back: it is a wrong answer, and the distance reward
scores it as one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from geo_r_lite.coordinates import parse_coordinates
from geo_r_lite.degenerate import is_degenerate
from geo_r_lite.prompts import FIELDS

__all__ = ["ParsedAnswer", "completion_text", "parse_answer", "parse_coordinates", "parse_many"]

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_KEYS = (*FIELDS, "coordinates")
_UNKNOWN_VALUES = frozenset({"unknown", "n/a", "na", "none", "?", "-"})

_TAG = re.compile(r"</?(?:think|answer)>")
_TAG_SPLIT = re.compile(rf"({_TAG.pattern})")
# The two well-formed sequences of tags.
_THINK_THEN_ANSWER = (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE)
_ANSWER_ONLY = (_ANSWER_OPEN, _ANSWER_CLOSE)
_KEY_SET = frozenset(_KEYS)
# The answer body exactly as the prompt lays it out (``prompts.build_answer``).
_CANONICAL_BODY = re.compile("\n?" + "\n".join(rf"{key.capitalize()}:([^\n]*)" for key in _KEYS)
                             + "\n?")


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """One parsed completion. Coordinates in degrees (lat in [-90, 90], lon in [-180, 180]) or None.

    ``think`` is the stripped ``<think>`` text ("" when empty, None when missing or broken);
    ``error`` says why ``format_ok`` is False (None when it is True); ``degenerate`` flags
    looping or garbage output (checked only for well-formed answers, where it changes a reward).
    """

    lat: float | None = None
    lon: float | None = None
    continent: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    think: str | None = None
    format_ok: bool = False
    error: str | None = None
    degenerate: bool = False


def completion_text(completion) -> str:
    """The text of a completion: a string, or a TRL message list (or one message dict).

    Messages contribute their ``content`` when it is a string or a list of ``{"type": "text"}``
    parts; only assistant messages count when a list holds any. Anything else gives "".
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return ""
    messages = [m for m in completion if isinstance(m, dict)]
    if any(m.get("role") == "assistant" for m in messages):
        messages = [m for m in messages if m.get("role") == "assistant"]
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, (list, tuple)):
            parts.extend(p["text"] for p in content if isinstance(p, dict)
                         and p.get("type") == "text" and isinstance(p.get("text"), str))
    return "".join(parts)


def _scan_tags(text: str) -> tuple[str | None, str | None, str | None]:
    """(answer body, think text, error) from one scan of the think/answer tags.

    The body is the chosen answer block's text (the rules above), None when there is no
    ``<answer>`` tag. The think text is the ``<think>`` block's (unstripped) when the text holds
    exactly one think block and it closes before the chosen answer, else None.
    """
    # Splitting on the tags (kept) gives the well-formed layouts' pieces without match objects.
    pieces = _TAG_SPLIT.split(text)
    names = tuple(pieces[1::2])
    if names == _THINK_THEN_ANSWER:
        think, body, outside = pieces[2], pieces[6], pieces[0] + pieces[4] + pieces[8]
    elif names == _ANSWER_ONLY:
        think, body, outside = None, pieces[2], pieces[0] + pieces[4]
    elif not names:
        return None, None, "no <answer> block"
    else:
        return _scan_tag_positions(text, names)
    if outside and not outside.isspace():
        return body, think, "text outside the <think>/<answer> blocks"
    return body, think, None


def _scan_tag_positions(text: str, names: tuple[str, ...]) -> tuple[str | None, str | None, str]:
    """``_scan_tags`` for any other layout (always a format error), from the tags' positions."""
    tags = [(m[0], m.start(), m.end()) for m in _TAG.finditer(text)]
    last_open, block = None, None
    for name, start, end in tags:
        if name == _ANSWER_OPEN:
            last_open = end
        elif name == _ANSWER_CLOSE and last_open is not None:
            block, last_open = (last_open, start), None
    if block is not None:
        body_start, body_end = block
        n_open = names.count(_ANSWER_OPEN)
        error = (f"{n_open} <answer> blocks" if n_open > 1 or names.count(_ANSWER_CLOSE) > 1
                 else "misplaced or unbalanced <think> tags")
    elif last_open is not None:
        # The last line of a cut completion may stop mid-number: keep only finished lines.
        body_start = last_open
        body_end = max(text.rfind("\n", last_open) + 1, last_open)
        error = "unclosed <answer> block (truncated?)"
    else:
        return None, _think_text(text, tags, names, len(text)), "no <answer> block"
    think = _think_text(text, tags, names, body_start - len(_ANSWER_OPEN))
    return text[body_start:body_end], think, error


def _think_text(text: str, tags: list[tuple[str, int, int]], names: tuple[str, ...],
                answer_start: int) -> str | None:
    if names.count(_THINK_OPEN) != 1 or names.count(_THINK_CLOSE) != 1:
        return None
    open_at, close_at = tags[names.index(_THINK_OPEN)][2], tags[names.index(_THINK_CLOSE)][1]
    return text[open_at:close_at] if open_at <= close_at and close_at < answer_start else None


def _fields(body: str) -> tuple[dict[str, str], str | None]:
    """(key -> stripped value with the last line winning, error of the field lines or None)."""
    canonical = _CANONICAL_BODY.fullmatch(body)
    if canonical:
        # The prompt's own layout (five field lines in chain order, nothing else): one regex
        # match gives what the loop below would, and only an empty value can be wrong.
        values = dict(zip(_KEYS, [value.strip() for value in canonical.groups()]))
        if all(values.values()):
            return values, None
        return values, _field_error(list(_KEYS), values, len(_KEYS))
    keys, values, n_lines = _field_lines(body)
    return values, _field_error(keys, values, n_lines)


def _field_lines(body: str) -> tuple[list[str], dict[str, str], int]:
    """(field keys in order, key -> stripped value with the last line winning, non-blank lines).

    A field line is ``key: value`` with one of the five keys, any case, blanks around the key.
    """
    keys, values, n_lines = [], {}, 0
    for line in body.split("\n"):
        if not line or line.isspace():
            continue
        n_lines += 1
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if colon and key in _KEY_SET:
            keys.append(key)
            values[key] = value.strip()
    return keys, values, n_lines


def _field_error(keys: list[str], values: dict[str, str], n_lines: int) -> str | None:
    missing = [k for k in _KEYS if not values.get(k)]
    if missing:
        return "missing field(s): " + ", ".join(missing)
    if len(keys) != len(_KEYS):
        return "duplicate field(s)"
    if tuple(keys) != _KEYS:
        return "fields out of chain order"
    if n_lines != len(keys):
        return "unexpected text inside <answer>"
    return None


def _name(value: str | None) -> str | None:
    """A place-level value, None for missing, empty or Unknown-like."""
    if not value or value.lower() in _UNKNOWN_VALUES:
        return None
    return value


@functools.lru_cache(maxsize=8192)
def _parse_text(text: str) -> ParsedAnswer:
    body, think, tag_error = _scan_tags(text)
    if think is not None:
        think = think.strip()
    if body is None:
        return ParsedAnswer(think=think, error=tag_error)
    values, field_error = _fields(body)
    error = tag_error or field_error
    coords_text = values.get("coordinates") or ""
    pair = parse_coordinates(coords_text, strict=True)
    if pair is None:
        error = error or f"bad coordinates: {coords_text[:40]!r}"
        pair = parse_coordinates(coords_text, strict=False)
    lat, lon = pair if pair is not None else (None, None)
    return ParsedAnswer(
        lat=lat, lon=lon, continent=_name(values.get("continent")),
        country=_name(values.get("country")), region=_name(values.get("region")),
        city=_name(values.get("city")), think=think, format_ok=error is None, error=error,
        degenerate=error is None and is_degenerate(text),
    )


def parse_answer(text_or_completion) -> ParsedAnswer:
    """Parse a completion (string or TRL message list) into a ``ParsedAnswer``; never raises.

    Results are cached by text, so several rewards over one batch parse each completion once.
    """
    return _parse_text(completion_text(text_or_completion))


def parse_many(completions) -> list[ParsedAnswer]:
    """``parse_answer`` of each completion of a batch (strings skip ``completion_text``)."""
    return [_parse_text(c) if type(c) is str else _parse_text(completion_text(c))
            for c in completions]
