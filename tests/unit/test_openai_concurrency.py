"""The ``openai`` backend sends a batch's requests concurrently (bounded), results in input order."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tests.unit.test_openai_backend import Reply, backend, chat_completion, json_reply, serve

from claimflow.config import PipelineConfig
from claimflow.errors import BackendError
from claimflow.llm.base import GenRequest, Message
from claimflow.llm.factory import make_backend
from claimflow.models.store import ModelStore


class InFlight:
    """Counts requests the server holds at once; each waits (bounded) until ``expect`` are in flight,
    so a concurrent client is seen concurrent whatever the machine's speed."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.full = threading.Event()

    def answer(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            if self.now >= self.expect:
                self.full.set()
        self.full.wait(timeout=10)
        text = body["messages"][-1]["content"]
        with self.lock:
            self.now -= 1
        if text == "fail":
            return json_reply({"error": {"message": "bad request"}}, status=400)
        return json_reply(chat_completion(f"echo {text}"))


def requests(n: int) -> list[GenRequest]:
    return [GenRequest((Message("user", f"prompt {i}"),), max_tokens=4) for i in range(n)]


@pytest.mark.parametrize("limit", [2, 4])
def test_requests_are_in_flight_together_up_to_the_limit_and_answers_keep_their_order(limit: int) -> None:
    server = InFlight(expect=limit)
    with serve(server.answer) as served:
        client = backend(served.base_url, max_concurrency=limit)
        out = client.generate(requests(10))
        client.close()
    assert [g.text for g in out] == [f"echo prompt {i}" for i in range(10)]
    assert server.most == limit
    assert client.stats.calls == 10 and client.stats.prompt_tokens == 110


def test_a_limit_of_one_sends_one_request_at_a_time() -> None:
    server = InFlight(expect=99)
    server.full.set()  # nobody waits
    with serve(server.answer) as served:
        client = backend(served.base_url, max_concurrency=1)
        out = client.generate(requests(5))
        client.close()
    assert len(out) == 5 and server.most == 1
    assert [b["messages"][-1]["content"] for b in served.requests] == [f"prompt {i}" for i in range(5)]


def test_the_first_error_of_a_batch_is_raised() -> None:
    server = InFlight(expect=2)
    batch = requests(3)
    batch[1] = GenRequest((Message("user", "fail"),), max_tokens=4)
    with serve(server.answer) as served:
        client = backend(served.base_url, max_concurrency=2)
        with pytest.raises(BackendError, match="rejected"):
            client.generate(batch)
        client.close()


def test_the_limit_is_a_config_key_of_the_openai_kind() -> None:
    config = PipelineConfig.from_dict({"backends": {"default": {"kind": "openai", "model": "m", "max_concurrency": 8}}})
    built = make_backend(config.backends["default"], ModelStore())
    assert getattr(built, "max_concurrency", None) == 8
    built.close()
