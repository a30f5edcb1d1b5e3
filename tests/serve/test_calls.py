"""Tool calls parsed out of generated text: ``<tool_call>{json}</tool_call>`` blocks."""

from __future__ import annotations

from rollcraft.serve import ToolCall, parse_calls


def test_one_call_and_the_text_around_it() -> None:
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert parse_calls(text) == ("Let me check.", [ToolCall("get_weather", '{"city":"Oslo"}')])


def test_parallel_calls_keep_their_order() -> None:
    text = (
        '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": "{\\"y\\": [2]}"}</tool_call>'
    )
    assert parse_calls(text) == ("", [ToolCall("a", '{"x":1}'), ToolCall("b", '{"y":[2]}')])


def test_parameters_is_read_as_arguments_and_none_as_no_arguments() -> None:
    assert parse_calls('<tool_call>{"name": "f", "parameters": {"k": "v"}}</tool_call>')[1] == [
        ToolCall("f", '{"k":"v"}')
    ]
    assert parse_calls('<tool_call>{"name": "f"}</tool_call>')[1] == [ToolCall("f", "{}")]


def test_what_is_not_a_call_stays_text() -> None:
    for text in (
        "no calls here ",
        '<tool_call>{"name": "f", "arguments": {"a": 1}</tool_call>',  # not JSON
        '<tool_call>{"arguments": {"a": 1}}</tool_call>',  # no name
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',  # arguments not an object
        '<tool_call>{"name": "f", "arguments": {"a": 1}}',  # never closed
    ):
        assert parse_calls(text) == (text, [])
    broken_then_good = '<tool_call>oops</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>'
    assert parse_calls(broken_then_good) == ("<tool_call>oops</tool_call>", [ToolCall("g", "{}")])
