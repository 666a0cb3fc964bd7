"""torch's thread count and RNG are process-global: components set them only around their own work."""

from __future__ import annotations

import torch

from claimflow.torch_scope import RngStream, seeded, torch_threads


def test_threads_hold_inside_the_block_and_are_restored_after() -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_threads_restored_when_the_block_raises() -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    try:
        with torch_threads(other):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before


def test_no_thread_setting_leaves_the_process_setting() -> None:
    before = torch.get_num_threads()
    with torch_threads(None), torch_threads(0):
        assert torch.get_num_threads() == before


def test_seeded_block_is_reproducible_and_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        first = torch.rand(3)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's sequence went on as if untouched
    with seeded(7):
        assert torch.equal(torch.rand(3), first)


def test_rng_stream_continues_its_own_sequence_across_blocks() -> None:
    torch.manual_seed(0)
    reference = torch.rand(6)  # seed 0's sequence, drawn in one go
    torch.manual_seed(99)
    caller_next = torch.rand(2)
    torch.manual_seed(99)
    stream = RngStream(0)
    with stream.use():
        a = torch.rand(3)
    with stream.use():
        b = torch.rand(3)
    assert torch.equal(torch.cat([a, b]), reference)
    assert torch.equal(torch.rand(2), caller_next)
