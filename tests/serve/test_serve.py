"""``rollcraft serve`` as its clients use it: a real server over a real (tiny, taught) model,
called over HTTP with httpx, and with the ``openai`` client when it is installed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve._model import ANSWER, WEATHER_TOOL

FLAT_TOOL = {"type": "function", **WEATHER_TOOL["function"]}
QUESTION = "What is the weather in Paris?"
CALL_ARGS = {"city": "Paris"}


def post(base_url: str, path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base_url}{path}", json=body, timeout=60, **kwargs)


def responses(base_url: str, **body: Any) -> dict[str, Any]:
    response = post(base_url, "/responses", {"model": "tiny-tool", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def chat(base_url: str, **body: Any) -> dict[str, Any]:
    response = post(base_url, "/chat/completions", {"model": "tiny-tool", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_models_lists_the_served_model(base_url: str) -> None:
    listed = httpx.get(f"{base_url}/models").json()
    assert [m["id"] for m in listed["data"]] == ["tiny-tool"] and listed["object"] == "list"
    assert httpx.get(f"{base_url}/models/tiny-tool").json()["id"] == "tiny-tool"
    assert httpx.get(f"{base_url}/models/other").status_code == 404


def test_responses_returns_a_function_call_item(base_url: str, model_dir: Path) -> None:
    result = responses(
        base_url, input=[{"role": "user", "content": QUESTION}], tools=[FLAT_TOOL], temperature=0
    )
    assert result["object"] == "response" and result["status"] == "completed"
    [call] = result["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == CALL_ARGS and call["call_id"].startswith("call_")
    usage = result["usage"]
    assert usage["input_tokens"] == _prompt_tokens(model_dir, [{"role": "user", "content": QUESTION}])
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > usage["input_tokens"]


def _prompt_tokens(model_dir: Path, messages: list[dict[str, Any]]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    text = tokenizer.apply_chat_template(
        messages, tools=[WEATHER_TOOL], tokenize=False, add_generation_prompt=True
    )
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_responses_reads_function_call_and_its_output(base_url: str) -> None:
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": json.dumps(CALL_ARGS),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    result = responses(base_url, input=items, tools=[FLAT_TOOL], temperature=0)
    [message] = result["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "output_text", "text": ANSWER, "annotations": [], "logprobs": []}]


def test_chat_completions_returns_tool_calls_then_the_answer(base_url: str) -> None:
    ask = [{"role": "user", "content": QUESTION}]
    first = chat(base_url, messages=ask, tools=[WEATHER_TOOL], temperature=0)["choices"][0]
    assert first["finish_reason"] == "tool_calls" and first["message"]["content"] is None
    [call] = first["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == CALL_ARGS
    tool = {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
    second = chat(base_url, messages=[*ask, first["message"], tool], tools=[WEATHER_TOOL], temperature=0)
    assert second["choices"][0]["message"] == {"role": "assistant", "content": ANSWER}
    assert second["choices"][0]["finish_reason"] == "stop"


def test_both_apis_render_the_same_prompt(base_url: str) -> None:
    """A Responses conversation and its chat form give the same prompt (token count) and text."""
    items = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    a = responses(base_url, input=items, tools=[FLAT_TOOL], temperature=0, max_output_tokens=8)
    b = chat(base_url, messages=messages, tools=[WEATHER_TOOL], temperature=0, max_tokens=8)
    assert a["usage"]["input_tokens"] == b["usage"]["prompt_tokens"]
    assert a["output"][0]["content"][0]["text"] == b["choices"][0]["message"]["content"]


def test_tool_choice_none_leaves_the_text_alone(base_url: str) -> None:
    result = responses(base_url, input=QUESTION, tools=[FLAT_TOOL], tool_choice="none", temperature=0)
    [message] = result["output"]
    assert message["type"] == "message" and message["content"][0]["text"].startswith("<tool_call>")


def test_max_tokens_cut_the_generation(base_url: str) -> None:
    result = responses(base_url, input=QUESTION, tools=[FLAT_TOOL], temperature=0, max_output_tokens=3)
    assert result["status"] == "incomplete" and result["incomplete_details"] == {
        "reason": "max_output_tokens"
    }
    assert result["usage"]["output_tokens"] == 3
    for key in ("max_tokens", "max_completion_tokens"):
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}], key: 2, "seed": 1}
        done = chat(base_url, **body)
        assert done["usage"]["completion_tokens"] <= 2
        if done["usage"]["completion_tokens"] == 2:
            assert done["choices"][0]["finish_reason"] in ("length", "stop")


def test_same_seed_same_text(base_url: str) -> None:
    body = {"input": "Tell me something.", "temperature": 1.0, "top_p": 0.95, "max_output_tokens": 24}
    texts = [
        responses(base_url, **body, seed=seed)["output"][0]["content"][0]["text"] for seed in (7, 7, 8, 9)
    ]
    assert texts[0] == texts[1]
    assert len(set(texts)) > 1  # the seed is used: other seeds sample other text
    messages = [{"role": "user", "content": "Tell me something."}]
    again = [chat(base_url, messages=messages, temperature=1.0, seed=7, max_tokens=24) for _ in range(2)]
    assert again[0]["choices"][0]["message"] == again[1]["choices"][0]["message"]


def test_concurrent_requests_are_queued_and_all_answered(base_url: str) -> None:
    bodies = [
        {"input": f"Question {i}?", "temperature": 1.0, "seed": i, "max_output_tokens": 16} for i in range(8)
    ]
    alone = [responses(base_url, **body) for body in bodies[:3]]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda body: responses(base_url, **body), bodies))
    assert all(r["status"] in ("completed", "incomplete") for r in together)
    text = [r["output"][0]["content"][0]["text"] for r in together]
    assert text[:3] == [r["output"][0]["content"][0]["text"] for r in alone]  # seeded: others don't interfere


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/responses", {"input": "hi", "stream": True}, "streaming is not supported"),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, "streaming"),
        (
            "/responses",
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:x"}]}]},
            "images are not supported",
        ),
        (
            "/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "images are not supported",
        ),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n must be 1"),
        ("/responses", {"input": "hi", "temperature": 3}, "temperature must be a number from 0 to 2"),
        ("/responses", {"input": "hi", "max_output_tokens": 0}, "max_output_tokens must be an integer"),
        (
            "/responses",
            {"input": "hi", "previous_response_id": "resp_1"},
            "previous_response_id is not supported",
        ),
        ("/responses", {"input": "hi", "tools": [{"type": "web_search"}]}, "only function tools"),
        ("/responses", {"input": "hi", "tool_choice": "required"}, "tool_choice must be"),
        ("/responses", {"input": 5}, "input must be a string or a list"),
        ("/chat/completions", {"messages": []}, "no messages"),
    ],
)
def test_what_is_not_supported_is_a_400_that_says_so(
    base_url: str, path: str, body: dict[str, Any], words: str
) -> None:
    response = post(base_url, path, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"


def test_wrong_requests_get_openai_style_errors(base_url: str) -> None:
    bad_json = httpx.post(f"{base_url}/responses", content=b"{not json", timeout=10)
    assert bad_json.status_code == 400 and "not JSON" in bad_json.json()["error"]["message"]
    assert httpx.post(f"{base_url}/nowhere", json={}).json()["error"]["message"].endswith("no such route")
    assert httpx.get(f"{base_url}/responses").status_code == 405


def test_web_pages_are_refused(base_url: str) -> None:
    """A browser page reaches the server neither cross-site (Origin) nor by DNS rebinding (Host)."""
    body = {"input": "hi", "max_output_tokens": 1}
    assert post(base_url, "/responses", body, headers={"Origin": "https://evil.example"}).status_code == 403
    assert post(base_url, "/responses", body, headers={"Host": "evil.example"}).status_code == 403
    assert post(base_url, "/responses", body, headers={"Origin": "http://localhost:3000"}).status_code == 200


def test_the_openai_client_parses_the_answers(base_url: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny-tool"]
    response = client.responses.create(
        model="tiny-tool",
        input=QUESTION,
        tools=[FLAT_TOOL],
        temperature=0,  # type: ignore[list-item]
    )
    [call] = response.output
    assert call.type == "function_call" and json.loads(call.arguments) == CALL_ARGS
    assert response.usage is not None and response.usage.output_tokens > 0
    completion = client.chat.completions.create(
        model="tiny-tool",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        temperature=0,
        seed=1,
    )
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None and tool_calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
        client.responses.create(model="tiny-tool", input="hi", stream=True)


def test_a_prompt_longer_than_the_context_is_a_400(base_url: str) -> None:
    response = post(base_url, "/chat/completions", {"messages": [{"role": "user", "content": "7" * 1100}]})
    assert response.status_code == 400
    assert "model's context length is 1024 tokens" in response.json()["error"]["message"]


def test_a_limit_past_the_context_is_capped_by_the_room_left(base_url: str) -> None:
    messages = [{"role": "user", "content": "7" * 1000}]
    done = chat(base_url, messages=messages, max_tokens=4000, seed=0, temperature=2)
    usage = done["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] <= 1024


def test_reasoning_items_reach_the_template(base_url: str) -> None:
    """A reasoning item before a call renders as the template's <think> block (more prompt tokens)."""
    call = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    items = [
        {"role": "user", "content": QUESTION},
        call,
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    thought = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "I should look it up."}]}
    plain = responses(base_url, input=items, max_output_tokens=1, temperature=0)
    thinking = responses(base_url, input=[items[0], thought, *items[1:]], max_output_tokens=1, temperature=0)
    assert thinking["usage"]["input_tokens"] > plain["usage"]["input_tokens"]


def test_waiting_requests_are_generated_together(base_url: str, app: Any) -> None:
    """Unseeded requests that arrive while a batch generates form the next batch; each keeps its
    own token limit. Seeded ones go alone (their text depends on their seed only)."""
    queue = app.state.queue
    before = len(queue.batches)
    bodies = [{"input": f"Question {i}?", "max_output_tokens": 1 + i % 4} for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda body: responses(base_url, **body), bodies))
    assert all(
        a["usage"]["output_tokens"] <= b["max_output_tokens"] for a, b in zip(answers, bodies, strict=True)
    )
    sizes = queue.batches[before:]
    assert sum(sizes) == 12 and max(sizes) > 1
    before = len(queue.batches)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: responses(base_url, input="Hi", seed=i, max_output_tokens=2), range(4)))
    assert queue.batches[before:] == [1, 1, 1, 1]
