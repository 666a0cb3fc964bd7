"""Token helpers shared by the in-process backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def continuation_ids(
    encode: Callable[[str], list[int]], prompt_text: str, prompt_ids: Sequence[int], candidate: str
) -> list[int]:
    """The tokens of ``candidate`` as the model would write them right after ``prompt_text``.

    Tokenizing prompt and candidate together gives the natural split (``" true"`` after
    ``"Veracity:"``); when the joint tokenization changes the prompt's own tokens at the seam, the
    candidate is tokenized alone instead.
    """
    joint = encode(prompt_text + candidate)
    n = len(prompt_ids)
    if len(joint) > n and list(joint[:n]) == list(prompt_ids):
        return list(joint[n:])
    alone = encode(candidate)
    if not alone:
        raise ValueError(f"label word {candidate!r} encodes to no tokens")
    return alone
