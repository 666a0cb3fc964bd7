"""Untrusted text (claims, evidence) must never become chat control tokens.

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
