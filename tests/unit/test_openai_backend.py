"""The ``openai`` backend against small stdlib HTTP servers on 127.0.0.1 (no model, no network)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from claimflow.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CapabilityError,
    ContextLengthError,
    ParseError,
)
from claimflow.llm.base import GenRequest, Message, ScoreRequest
from claimflow.llm.openai_backend import OpenAIBackend, completion_prompt, match_candidates

Reply = tuple[int, dict[str, str], bytes]
"""status, headers, body"""

MESSAGES = (Message("system", "You are a fact-checker."), Message("user", "Is this check-worthy? Yes or No."))


@dataclass
class Served:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The JSON bodies the server received, in order (``{}`` when a body was not JSON)."""


@contextmanager
def serve(answer: Callable[[dict[str, Any]], Reply]) -> Iterator[Served]:
    """An HTTP server on 127.0.0.1 (free port) answering every POST with ``answer(request_json)``."""
    served = Served(base_url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            with lock:
                served.requests.append(body)
            status, headers, payload = answer(body)
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    served.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def json_reply(payload: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def chat_completion(content: str, tokens: list[tuple[str, dict[str, float]]] | None = None) -> dict[str, Any]:
    """A well-formed chat completion; ``tokens`` = [(token, {top token: logprob})] for logprobs."""
    logprobs = None
    if tokens is not None:
        logprobs = {
            "content": [
                {
                    "token": token,
                    "logprob": top.get(token, -9.0),
                    "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
                }
                for token, top in tokens
            ],
            "refusal": None,
        }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def text_completion(text: str, top: dict[str, float] | None) -> dict[str, Any]:
    logprobs = None
    if top is not None:
        first = next(iter(top), "")
        logprobs = {"tokens": [first], "token_logprobs": [top.get(first)], "top_logprobs": [top], "text_offset": [0]}
    return {
        "id": "cmpl-test",
        "object": "text_completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }


def backend(base_url: str, **kwargs: Any) -> OpenAIBackend:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("max_retries", 0)
    return OpenAIBackend("test-model", base_url=base_url, api_key="test", **kwargs)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        (200, {"Content-Type": "application/json"}, b"<html>not json{"),
        (200, {"Content-Type": "text/plain"}, b"hello, I am not an OpenAI server"),
        json_reply({"hello": "world"}),
        json_reply({"choices": "garbage"}),
        json_reply({"choices": [{"nothing": "here"}]}),
    ],
    ids=["json-content-type-garbage", "text-garbage", "json-not-completion", "choices-not-list", "bad-choice"],
)
def test_garbage_answer_is_a_backend_error(reply: Reply) -> None:
    with serve(lambda _body: reply) as served:
        b = backend(served.base_url)
        with pytest.raises(BackendError, match=r"127\.0\.0\.1.*(not JSON|not an OpenAI completion)"):
            b.generate([GenRequest(MESSAGES, max_tokens=4)])
        with pytest.raises(BackendError):
            b.score([ScoreRequest(MESSAGES, ("Yes", "No"))])
        b.close()


def test_http_500_is_retried_by_the_client_then_a_backend_error() -> None:
    body = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
    with serve(lambda _body: (500, {"Content-Type": "application/json"}, body)) as served:
        b = backend(served.base_url, max_retries=2)
        start = time.perf_counter()
        with pytest.raises(BackendError, match="HTTP 500") as info:
            b.generate([GenRequest(MESSAGES, max_tokens=4)])
        elapsed = time.perf_counter() - start
        b.close()
    assert type(info.value) is BackendError
    assert len(served.requests) == 3  # one try + max_retries=2
    assert elapsed < 10


def test_slow_server_is_a_timeout_error() -> None:
    def sleepy(_body: dict[str, Any]) -> Reply:
        time.sleep(1.5)  # ends by itself, well after the client's 0.5 s
        return json_reply(chat_completion("late"))

    with serve(sleepy) as served:
        b = backend(served.base_url, timeout_s=0.5, max_retries=0)
        start = time.perf_counter()
        with pytest.raises(BackendTimeoutError, match="timeout"):
            b.generate([GenRequest(MESSAGES, max_tokens=4)])
        assert time.perf_counter() - start < 1.4
        b.close()
    assert len(served.requests) == 1


def free_closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_is_unavailable_with_a_hint() -> None:
    b = backend(f"http://127.0.0.1:{free_closed_port()}/v1")
    with pytest.raises(BackendUnavailableError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1.*server.*base_url"):
        b.generate([GenRequest(MESSAGES, max_tokens=4)])
    with pytest.raises(BackendUnavailableError, match="base_url"):
        b.score([ScoreRequest(MESSAGES, ("Yes", "No"))])


def test_structured_output_from_closed_port_is_unavailable() -> None:
    class Stance(BaseModel):
        stance: Literal["SUPPORT", "REFUTE"]

    b = backend(f"http://127.0.0.1:{free_closed_port()}/v1")
    with pytest.raises(BackendUnavailableError, match="base_url"):
        b.generate_structured(MESSAGES, Stance, max_retries=0)


def test_structured_output_that_never_validates_is_a_parse_error_with_the_raw_answer() -> None:
    class Stance(BaseModel):
        stance: Literal["SUPPORT", "REFUTE"]

    with serve(lambda body: json_reply(chat_completion('{"stance": "MAYBE"}'))) as served:
        b = backend(served.base_url)
        with pytest.raises(ParseError, match="did not validate") as caught:
            b.generate_structured(MESSAGES, Stance, max_retries=1)
    assert "MAYBE" in caught.value.raw
    assert len(served.requests) >= 1


def test_context_length_400_is_a_context_length_error() -> None:
    error = {
        "error": {
            "message": "This model's maximum context length is 2048 tokens. However, you requested 5000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    with serve(lambda _body: json_reply(error, status=400)) as served:
        b = backend(served.base_url, max_retries=2)
        with pytest.raises(ContextLengthError, match="context"):
            b.generate([GenRequest(MESSAGES, max_tokens=4)])
        b.close()
    assert len(served.requests) == 1  # a 400 is not retried


def test_other_400_is_a_plain_backend_error() -> None:
    error = {"error": {"message": "unknown parameter 'foo'", "type": "invalid_request_error"}}
    with serve(lambda _body: json_reply(error, status=400)) as served:
        b = backend(served.base_url)
        with pytest.raises(BackendError, match="rejected the request") as info:
            b.generate([GenRequest(MESSAGES, max_tokens=4)])
        b.close()
    assert not isinstance(info.value, ContextLengthError)


# --- generate ------------------------------------------------------------------------------------


def test_generate_chat_reads_text_usage_and_strips_a_written_prefix() -> None:
    with serve(lambda _body: json_reply(chat_completion("Claim Veracity: true, because"))) as served:
        b = backend(served.base_url)
        (plain,) = b.generate([GenRequest(MESSAGES, max_tokens=7, seed=3)])
        (prefixed,) = b.generate([GenRequest(MESSAGES, assistant_prefix="Claim Veracity:")])
        b.close()
    assert plain.text == "Claim Veracity: true, because"
    assert (plain.prompt_tokens, plain.completion_tokens, plain.finish_reason) == (11, 3, "stop")
    assert prefixed.text == " true, because"
    sent = served.requests[0]
    assert sent["model"] == "test-model" and sent["max_tokens"] == 7 and sent["seed"] == 3
    assert sent["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert b.stats.calls == 2 and b.stats.prompt_tokens == 22


def test_generate_completions_sends_the_plain_prompt_and_a_turn_stop() -> None:
    with serve(lambda _body: json_reply(text_completion(" It is.", None))) as served:
        b = backend(served.base_url, api="completions")
        (gen,) = b.generate([GenRequest(MESSAGES, max_tokens=5, stop=("\n",))])
        b.close()
    assert gen.text == " It is."
    sent = served.requests[0]
    assert sent["prompt"] == completion_prompt(MESSAGES)
    assert sent["prompt"].endswith("\n\nAssistant:")
    assert sent["stop"] == ["\n", "\n\nUser:"]


# --- score ---------------------------------------------------------------------------------------


def test_score_chat_maps_top_logprobs_of_the_first_token() -> None:
    tokens = [("Yes", {"Yes": -0.2, "No": -1.9, "yes": -4.0, "The": -5.0})]
    with serve(lambda _body: json_reply(chat_completion("Yes", tokens))) as served:
        b = backend(served.base_url, top_logprobs=7)
        (scores,) = b.score([ScoreRequest(MESSAGES, ("Yes", "No", "yes", "NO"))])
        b.close()
    assert scores == {"Yes": -0.2, "No": -1.9, "yes": -4.0}  # "NO" is outside the top k
    sent = served.requests[0]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 7 and sent["max_tokens"] == 1


def test_score_chat_reads_the_label_after_the_written_prefix() -> None:
    tokens = [
        ("Claim", {"Claim": -0.1, "True": -3.0}),
        (" Veracity", {" Veracity": -0.05}),
        (":", {":": -0.01}),
        (" true", {" true": -0.4, " false": -1.3, " True": -2.5, " unver": -3.5}),
        (".", {".": -0.2}),
    ]
    with serve(lambda _body: json_reply(chat_completion("Claim Veracity: true.", tokens))) as served:
        b = backend(served.base_url)
        (scores,) = b.score(
            [ScoreRequest(MESSAGES, (" true", " false", " True", " unverified", " False"), "Claim Veracity:")]
        )
        b.close()
    # " unverified" by its first sub-word; " False" is not in the top k.
    assert scores == {" true": -0.4, " false": -1.3, " True": -2.5, " unverified": -3.5}
    assert served.requests[0]["max_tokens"] > 4  # room to write the prefix first


def test_score_chat_reads_the_first_token_when_the_prefix_is_not_written() -> None:
    tokens = [("False", {"False": -0.3, "True": -1.5, "true": -2.5, "The": -3.0}), (".", {".": -0.1})]
    with serve(lambda _body: json_reply(chat_completion("False.", tokens))) as served:
        b = backend(served.base_url)
        (scores,) = b.score([ScoreRequest(MESSAGES, (" true", " True", " False", " false"), "Claim Veracity:")])
        b.close()
    assert scores == {" true": -2.5, " True": -1.5, " False": -0.3}


def test_score_chat_prefix_written_last_gives_nothing() -> None:
    tokens = [("Claim", {"Claim": -0.1}), (" Veracity", {" Veracity": -0.1}), (":", {":": -0.1})]
    with serve(lambda _body: json_reply(chat_completion("Claim Veracity:", tokens))) as served:
        b = backend(served.base_url)
        assert b.score([ScoreRequest(MESSAGES, (" true",), "Claim Veracity:")]) == [{}]
        b.close()


def test_score_chat_without_logprobs_is_a_capability_error_but_an_empty_answer_is_not() -> None:
    with serve(lambda _body: json_reply(chat_completion("Yes", None))) as served:
        b = backend(served.base_url)
        with pytest.raises(CapabilityError, match="text verbalizer"):
            b.score([ScoreRequest(MESSAGES, ("Yes", "No"))])
        b.close()
    with serve(lambda _body: json_reply(chat_completion("", []))) as served:  # the model stopped at once
        b = backend(served.base_url)
        assert b.score([ScoreRequest(MESSAGES, ("Yes", "No"))]) == [{}]
        b.close()


def test_score_completions_reads_words_after_assistant_and_after_the_prefix() -> None:
    plain_answer = text_completion(" Yes", {" Yes": -0.3, " No": -1.4, "Yes": -6.0})
    prefixed_answer = text_completion(" true", {" true": -0.2, " false": -2.0})

    def answer(body: dict[str, Any]) -> Reply:  # the two requests may arrive in either order (sent concurrently)
        return json_reply(prefixed_answer if str(body.get("prompt", "")).endswith("Claim Veracity:") else plain_answer)

    with serve(answer) as served:
        b = backend(served.base_url, api="completions", top_logprobs=5)
        plain, prefixed = b.score(
            [
                ScoreRequest(MESSAGES, ("Yes", "No")),
                ScoreRequest(MESSAGES, (" true", " false", " unverified"), "Claim Veracity:"),
            ]
        )
        b.close()
    # After "Assistant:" the model writes " Yes": that is the candidate "Yes" (not the rare "Yes" token).
    assert plain == {"Yes": -0.3, "No": -1.4}
    assert prefixed == {" true": -0.2, " false": -2.0}
    first, second = sorted(served.requests, key=lambda body: len(body["prompt"]))  # arrival order may vary
    assert first["logprobs"] == 5 and first["max_tokens"] == 1
    assert first["prompt"].endswith("\n\nAssistant:")
    assert second["prompt"].endswith("\n\nAssistant: Claim Veracity:")


def test_score_completions_without_logprobs_is_a_capability_error() -> None:
    with serve(lambda _body: json_reply(text_completion(" Yes", None))) as served:
        b = backend(served.base_url, api="completions")
        with pytest.raises(CapabilityError):
            b.score([ScoreRequest(MESSAGES, ("Yes", "No"))])
        b.close()


# --- match_candidates ----------------------------------------------------------------------------


def test_match_candidates_exact_token_wins_over_a_sub_word() -> None:
    top = {" true": -0.5, " tr": -0.1, " false": -1.0}
    assert match_candidates(top, (" true", " false")) == {" true": -0.5, " false": -1.0}


def test_match_candidates_longest_non_blank_first_sub_word() -> None:
    top = {" un": -2.0, " unver": -1.0, " ": -0.1, "": -0.2, " u": -3.0}
    assert match_candidates(top, (" unverified",)) == {" unverified": -1.0}


def test_match_candidates_missing_words_are_left_out() -> None:
    assert match_candidates({" true": -0.5}, (" false", "true", " tru")) == {}


def test_match_candidates_lead_replaces_leading_whitespace() -> None:
    top = {"true": -0.5, " Yes": -0.3, "False": -1.0}
    assert match_candidates(top, (" true", " False"), lead="") == {" true": -0.5, " False": -1.0}
    assert match_candidates(top, ("Yes",), lead=" ") == {"Yes": -0.3}
    assert match_candidates(top, ("Yes", " true")) == {}


@pytest.mark.parametrize("answer", ['{"stance": "MAYBE"}', "I think it supports the claim.", '{"stance": "SUPP'])
@pytest.mark.parametrize("retries", [0, 2])
def test_every_unusable_structured_answer_is_a_parse_error_never_a_backend_error(answer: str, retries: int) -> None:
    """The Backend contract: a served answer that does not validate is a ParseError (recorded by the
    predictor as a parse failure), whatever the retry count and however it fails."""

    class Stance(BaseModel):
        stance: Literal["SUPPORT", "REFUTE"]

    with serve(lambda body: json_reply(chat_completion(answer))) as served:
        b = backend(served.base_url)
        with pytest.raises(ParseError) as caught:
            b.generate_structured(MESSAGES, Stance, max_retries=retries)
    assert not isinstance(caught.value, BackendError)
    assert caught.value.raw == answer
