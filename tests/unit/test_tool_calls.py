"""Tool calls out of model text: the tagged Hermes format and the untagged forms small models write."""

from __future__ import annotations

import json

from models.base import parse_tool_calls
from models.fake import FakeChatModel

TOOLS = [{"type": "function", "function": {"name": "calculate", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "ask", "parameters": {"type": "object"}}}]
NAMES = {"calculate", "ask"}


def test_tagged_calls_are_parsed_and_the_rest_is_text() -> None:
    text, calls = parse_tool_calls('Let me compute.\n<tool_call>\n{"name": "calculate", "arguments": '
                                   '{"expression": "2+2"}}\n</tool_call>\n<tool_call>{"name": "ask", "arguments": '
                                   '{"question": "Who?"}}</tool_call>', NAMES)
    assert text == "Let me compute."
    assert [(call.name, json.loads(call.arguments)) for call in calls] == [
        ("calculate", {"expression": "2+2"}), ("ask", {"question": "Who?"})]
    assert len({call.id for call in calls}) == 2 and calls[0].to_openai()["type"] == "function"


def test_untagged_fenced_and_double_braced_calls_count_only_for_offered_names() -> None:
    for reply in ('{"name": "calculate", "arguments": {"expression": "347 * 29"}}',
                  '```json\n{"name": "calculate", "arguments": {"expression": "347 * 29"}}\n```',
                  '<tools></tools>\n{{"name": "calculate", "arguments": {"expression": "347 * 29"}}}'):
        text, calls = parse_tool_calls(reply, NAMES)
        assert text == "" and [call.name for call in calls] == ["calculate"], reply
        assert json.loads(calls[0].arguments) == {"expression": "347 * 29"}
    for reply in ('{"name": "rm -rf", "arguments": {}}', 'The answer is {"x": 1}.', "<tool_call>not json</tool_call>"):
        text, calls = parse_tool_calls(reply, NAMES)
        assert calls == [] and text == reply.strip(), reply
    assert parse_tool_calls('{"name": "calculate", "arguments": {}}')[1] == []  # no tools offered: plain text


def test_the_fake_model_turns_scripted_calls_into_tool_calls_only_when_tools_are_offered() -> None:
    scripted = '<tool_call>{"name": "calculate", "arguments": {"expression": "1+1"}}</tool_call>'
    model = FakeChatModel().enqueue(scripted, scripted)
    with_tools = model.chat([{"role": "user", "content": "q"}], tools=TOOLS)
    assert with_tools.finish_reason == "tool_calls" and with_tools.tool_calls[0].name == "calculate"
    without = model.chat([{"role": "user", "content": "q"}])
    assert without.tool_calls == [] and without.text == scripted
