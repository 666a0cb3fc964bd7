"""Untrusted text (claims, evidence) must never become chat control tokens, and never carries NUL
bytes, lone surrogates or terminal control characters into a prompt (:func:`clean_text`).

Engines that tokenize a rendered chat prompt with special tokens enabled (llama.cpp does, so the
template's own ``<|im_start|>`` turns work) would also read a ``<|im_end|><|im_start|>system`` that
an evidence sentence carries as real turn boundaries, and let scraped text open a system turn.
:func:`neutralize_control_tokens` breaks every such marker in the inputs before they are rendered
(a space after its first character), so it stays visible as text but matches no special token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from claimflow.errors import InputEncodingError, InputError

__all__ = ["CONTROL_TOKEN", "clean_text", "neutralize_control_tokens", "neutralize_values"]

CONTROL_TOKEN = re.compile(
    r"<\|[^|<>\s]{1,48}\|>"  # ChatML / Qwen / SmolLM / Llama-3 / Phi: <|im_start|>, <|eot_id|>, <|endoftext|>
    r"|</?s>|\[/?INST\]|<</?SYS>>"  # Llama-2 / Mistral
    r"|<(?:start|end)_of_turn>|<bos>|<eos>|<pad>"  # Gemma
)


def neutralize_control_tokens(text: str) -> str:
    """``text`` with each chat control marker broken up (``<|im_end|>`` -> ``< |im_end|>``)."""
    return CONTROL_TOKEN.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1:], text)


def neutralize_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Template inputs with every string (also inside lists) neutralized."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return neutralize_control_tokens(value)
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in values.items()}


_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str, what: str) -> str:
    """``text`` (a claim, an evidence sentence) made safe to prompt with and to write as UTF-8.

    A NUL byte (binary or corrupt input) and a lone surrogate (bytes decoded with
    ``surrogateescape``, or a ``\\udcxx`` JSON escape: not Unicode text) are an error naming
    ``what`` and the offset; every other control character except tab and newlines becomes a space.
    """
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError(f"{what} has a NUL byte at offset {nul}: is the input a binary or corrupt file?")
    bad = _SURROGATE.search(text)
    if bad:
        raise InputEncodingError(
            f"{what} is not valid Unicode text (a lone surrogate U+{ord(bad.group()):04X} at offset {bad.start()}: "
            "bytes decoded with the wrong encoding, or a broken \\u escape); decode the source with its real encoding"
        )
    return _CONTROL.sub(" ", text)
