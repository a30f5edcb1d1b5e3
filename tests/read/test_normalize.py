"""One test per conversion rule of the Responses-to-chat mapping."""

from __future__ import annotations

from typing import Any

from rollcraft._records import Conversation
from rollcraft.read._normalize import Builder, conversation_from_chat, conversation_from_responses, nest_tools


def _conv(inputs: Any, output: Any, **params: Any) -> tuple[Conversation, set[str]]:
    flags: set[str] = set()
    mode = params.pop("reasoning", "separate")
    conversation = conversation_from_responses(
        {"input": inputs, **params}, output, reasoning=mode, flags=flags
    )
    return conversation, flags


def say(role: str, text: str, part: str = "output_text") -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}


def fcall(call_id: str, name: str = "f", args: str = '{"x": 1}') -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "id": "fc_other", "name": name, "arguments": args}


def fout(call_id: str, output: Any = "ok") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def test_string_input_is_one_user_message_and_instructions_lead() -> None:
    conv, flags = _conv("hi", [say("assistant", "hello")], instructions="be nice")
    assert conv.prompt == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
    assert conv.completion == [{"role": "assistant", "content": "hello"}]
    assert flags == set()


def test_developer_becomes_system_and_items_without_type_are_messages() -> None:
    conv, _ = _conv([{"role": "developer", "content": "rules"}, {"role": "user", "content": "q"}], [])
    assert [m["role"] for m in conv.prompt] == ["system", "user"]


def test_consecutive_calls_are_one_assistant_message_with_call_ids() -> None:
    conv, flags = _conv(
        "q",
        [
            say("assistant", "let me"),
            fcall("c1"),
            fcall("c2", "g"),
            fout("c1"),
            fout("c2", "two"),
            say("assistant", "done"),
        ],
    )
    first, t1, t2, last = conv.completion
    assert first["content"] == "let me"
    assert [c["id"] for c in first["tool_calls"]] == ["c1", "c2"]
    assert first["tool_calls"][1] == {
        "id": "c2",
        "type": "function",
        "function": {"name": "g", "arguments": '{"x": 1}'},
    }
    assert t1 == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert t2["content"] == "two" and last == {"role": "assistant", "content": "done"}
    assert flags == set()


def test_calls_without_text_have_empty_content() -> None:
    conv, _ = _conv("q", [fcall("c1"), fout("c1"), say("assistant", "a")])
    assert conv.completion[0]["content"] == "" and len(conv.completion[0]["tool_calls"]) == 1


def test_reasoning_modes() -> None:
    items = [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
        say("assistant", "a"),
    ]
    separate, _ = _conv("q", items)
    assert separate.completion == [{"role": "assistant", "content": "a", "reasoning_content": "think"}]
    think, flags = _conv("q", items, reasoning="think")
    assert think.completion == [{"role": "assistant", "content": "<think>\nthink\n</think>\na"}]
    assert "inline_think" not in flags
    dropped, _ = _conv("q", items, reasoning="drop")
    assert dropped.completion == [{"role": "assistant", "content": "a"}]


def test_encrypted_and_empty_reasoning_are_flagged() -> None:
    _, flags = _conv(
        "q", [{"type": "reasoning", "summary": [], "encrypted_content": "xx"}, say("assistant", "a")]
    )
    assert "encrypted_reasoning" in flags
    _, flags = _conv("q", [{"type": "reasoning", "summary": []}, say("assistant", "a")])
    assert "empty_reasoning" in flags


def test_text_parts_joined_and_images_replaced() -> None:
    inputs = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAA"},
            ],
        }
    ]
    conv, flags = _conv(inputs, [say("assistant", "a"), say("assistant", "b")])
    assert conv.prompt[0]["content"] == "look\n<image>" and "image_content" in flags
    assert conv.completion == [{"role": "assistant", "content": "a\nb"}]


def test_step_snapshots_take_the_last() -> None:
    snaps = [
        [say("user", "task"), fcall("c1")],
        [say("user", "task"), fcall("c1"), fout("c1"), say("assistant", "x")],
    ]
    conv, flags = _conv([], snaps)
    assert {"step_snapshots", "prompt_in_output"} <= flags
    assert conv.prompt == [{"role": "user", "content": "task"}]
    assert [m["role"] for m in conv.completion] == ["assistant", "tool", "assistant"]


def test_unpaired_and_orphan_tool_items() -> None:
    _, flags = _conv("q", [fcall("c1"), say("assistant", "gave up")])
    assert "unpaired_tool_call" in flags
    _, flags = _conv("q", [fout("nope"), say("assistant", "a")])
    assert "orphan_tool_output" in flags


def test_earlier_calls_in_input_pair_with_outputs() -> None:
    conv, flags = _conv([say("user", "q"), fcall("c0")], [fout("c0"), say("assistant", "a")])
    assert "unpaired_tool_call" not in flags and "orphan_tool_output" not in flags
    assert conv.prompt[1]["tool_calls"][0]["id"] == "c0"
    assert conv.completion[0]["role"] == "tool"


def test_ending_flags() -> None:
    _, flags = _conv("q", [])
    assert "empty_completion" in flags
    _, flags = _conv("q", [fcall("c"), fout("c")])
    assert "no_final_assistant" in flags
    _, flags = _conv("q", [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}])
    assert "empty_final_answer" in flags
    _, flags = _conv([], [say("assistant", "a")])
    assert "empty_prompt" in flags


def test_hosted_tools_and_unknown_items_are_left_out_and_flagged() -> None:
    conv, flags = _conv(
        "q", [{"type": "web_search_call", "id": "ws"}, {"type": "weird"}, 3, say("assistant", "a")]
    )
    assert conv.completion == [{"role": "assistant", "content": "a"}]
    assert {"hosted_tool_call", "unknown_item", "malformed_item"} <= flags


def test_arguments_normalized_to_json_text() -> None:
    conv, flags = _conv(
        "q",
        [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}},
            fout("c"),
            fcall("d", args="{bad"),
            fout("d"),
            say("assistant", "x"),
        ],
    )
    assert conv.completion[0]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    assert "invalid_tool_arguments" in flags


def test_missing_call_id_is_made_up_and_flagged() -> None:
    conv, flags = _conv(
        "q", [{"type": "function_call", "name": "f", "arguments": "{}"}, say("assistant", "x")]
    )
    assert conv.completion[0]["tool_calls"][0]["id"] == "call_1" and "missing_call_id" in flags


def test_refusal_part() -> None:
    conv, flags = _conv(
        "q", [{"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}]
    )
    assert conv.completion[0]["content"] == "no" and "refusal" in flags


def test_multi_turn_environment_turns_stay_in_completion() -> None:
    conv, _ = _conv("q", [say("assistant", "a1"), say("user", "more"), say("assistant", "a2")])
    assert [m["role"] for m in conv.completion] == ["assistant", "user", "assistant"]


def test_tools_are_nested_and_hosted_tools_flagged() -> None:
    flags: set[str] = set()
    flat = [
        {
            "type": "function",
            "name": "f",
            "description": None,
            "parameters": {"type": "object"},
            "strict": True,
        },
        {"type": "web_search"},
    ]
    assert nest_tools(flat, flags) == [
        {"type": "function", "function": {"name": "f", "description": "", "parameters": {"type": "object"}}}
    ]
    assert flags == {"hosted_tool"}


def test_chat_records_with_tool_calls() -> None:
    flags: set[str] = set()
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "r"},
        {"role": "assistant", "content": "a"},
    ]
    conv = conversation_from_chat(None, messages, None, flags=flags)
    assert conv.prompt == [{"role": "user", "content": "q"}]
    assert [m["role"] for m in conv.completion] == ["assistant", "tool", "assistant"]
    assert flags == set()


def test_the_builders_public_api_holds_the_mapping_rules() -> None:
    # Both decoders (dict items here, msgspec structs in rollcraft.read._fast) feed this one API.
    flags: set[str] = set()
    builder = Builder("separate", flags)
    builder.add_message("developer", "be brief")
    builder.add_message("user", "hi")
    builder.end_prompt()
    builder.add_reasoning(["", ""], encrypted="gAAA")
    builder.add_reasoning(["think", "", "more"])
    builder.add_call(None, "f", "{not json", item_id="")
    builder.add_call(None, "g", None, item_id="fc_1")
    builder.add_tool_output("call_1", "out")
    builder.add_tool_output("nobody", "lost")
    builder.add_message("tool", "late", tool_call_id="fc_1")
    builder.add_message("assistant", "done")
    conversation = builder.finish([])
    assert conversation.prompt == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert conversation.completion == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{not json"}},
                {"id": "fc_1", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
            "reasoning_content": "think\nmore",
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "out"},
        {"role": "tool", "tool_call_id": "nobody", "content": "lost"},
        {"role": "tool", "tool_call_id": "fc_1", "content": "late"},
        {"role": "assistant", "content": "done"},
    ]
    assert flags == {"encrypted_reasoning", "missing_call_id", "invalid_tool_arguments", "orphan_tool_output"}
