"""Detect degenerate model output: repetition loops and garbage (a known Qwen2.5-VL RL failure).

The format reward gives 0 to a well-formed answer wrapped in such output, so that a policy that
starts to loop is not paid for it. The checks are cheap heuristics, sampled at a few positions so
that their cost stays linear and small (they run on every well-formed completion of a GRPO batch).
"""

from __future__ import annotations

import re

_JUNK_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
# Every Latin-1 character that is not junk: deleting them from Latin-1 bytes leaves exactly the
# junk characters, counted in one C pass (the regex is many times slower per character).
_LATIN1_NOT_JUNK = bytes(b for b in range(256) if not _JUNK_CHAR.match(chr(b)))
_JUNK_MAX_SHARE = 0.02
_SPACE_RUN, _NEWLINE_RUN, _TAB_RUN = " " * 32, "\n" * 16, "\t" * 16
_PROBES = 8
_LOOP_WINDOW = 32
_LOOP_MIN_REPEATS = 4
_MASH_WINDOW = 80


def is_degenerate(text: str) -> bool:
    """True for looping or garbage output, by cheap heuristics (sampled, so linear and fast).

    - Loop: at one of ``_PROBES`` evenly spaced positions, the 32-character window there occurs
      4+ times (without overlap) from there on. Prose almost never repeats 32 characters 4 times;
      a loop is caught for sure when it is longer than the probe spacing (a seventh of the text)
      plus 4 times its period or 128 characters, whichever is more.
    - Runs: 32 spaces, 16 newlines or 16 tabs in a row; or, at a probe, 80 ASCII characters with
      no whitespace (keyboard mash, base64; caught for sure when longer than the probe spacing
      plus 80). CJK prose, which has no spaces, is not flagged.
    - Junk: more than 2 % control, private-use or U+FFFD replacement characters.
    """
    if _SPACE_RUN in text or _NEWLINE_RUN in text or _TAB_RUN in text:
        return True
    if _junk_count(text) > _JUNK_MAX_SHARE * len(text):
        return True
    span = len(text) - _MASH_WINDOW
    if span < 0:
        return False
    for i in range(_PROBES):
        at = span * i // (_PROBES - 1)
        # Counting from the probe on is enough: a loop runs forward (and it halves the scan). The
        # window matches at the probe itself, so 4 repeats are 3 more after it, and none can fit
        # in fewer than 3 windows' length (that skips the last probe's scan outright).
        rest = at + _LOOP_WINDOW
        if (len(text) - rest >= (_LOOP_MIN_REPEATS - 1) * _LOOP_WINDOW
                and text.count(text[at:rest], rest) >= _LOOP_MIN_REPEATS - 1):
            return True
        window = text[at:at + _MASH_WINDOW]
        if window.isascii() and " " not in window and "\n" not in window and "\t" not in window:
            return True
    return False


def _junk_count(text: str) -> int:
    """How many characters of ``text`` match ``_JUNK_CHAR``, fast for Latin-1 text."""
    try:
        # For ASCII and Latin-1 text (almost every completion) this is a plain copy.
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        # isprintable() is a fast C check that rules junk out for almost every other text.
        if "\ufffd" not in text and text.replace("\n", " ").replace("\t", " ").isprintable():
            return 0
        return len(_JUNK_CHAR.findall(text))
    return len(raw.translate(None, _LATIN1_NOT_JUNK))
