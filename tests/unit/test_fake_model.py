from __future__ import annotations

from models.base import ChatModel, Completion, TextDelta, collect_stream
from models.fake import FakeChatModel


def test_is_a_chat_model() -> None:
    assert isinstance(FakeChatModel(), ChatModel)


def test_scripted_then_responder_then_echo() -> None:
    model = FakeChatModel(responder=lambda messages: f"len={len(messages)}")
    model.enqueue("first answer", probability=0.3)
    first = model.chat([{"role": "user", "content": "hi there"}])
    assert first.text == "first answer"
    assert first.token_probabilities == [0.3, 0.3]
    assert first.usage.prompt_tokens == 2
    assert first.usage.completion_tokens == 2
    assert model.chat([{"role": "user", "content": "x"}]).text == "len=1"
    assert FakeChatModel().chat([{"role": "user", "content": "echo me"}]).text == "echo me"
    assert model.calls[0].messages == [{"role": "user", "content": "hi there"}]


def test_max_tokens_and_stop() -> None:
    model = FakeChatModel().enqueue("one two three four", "answer END ignored")
    cut = model.chat([{"role": "user", "content": "q"}], max_tokens=2)
    assert (cut.text, cut.finish_reason, cut.usage.completion_tokens) == ("one two", "length", 2)
    stopped = model.chat([{"role": "user", "content": "q"}], stop=["END"])
    assert stopped.text == "answer "


def test_stream_matches_chat() -> None:
    model = FakeChatModel().enqueue("a b c", "a b c")
    items = list(model.stream([{"role": "user", "content": "q"}]))
    assert isinstance(items[-1], Completion)
    assert "".join(item.text for item in items if isinstance(item, TextDelta)) == items[-1].text
    assert collect_stream(iter(items)).text == model.chat([{"role": "user", "content": "q"}]).text


def test_usage_derived_costs() -> None:
    model = FakeChatModel(parameters=500_000_000, price_per_million_tokens=0.05)
    usage = model.chat([{"role": "user", "content": "one two three"}]).usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens == 6
    assert usage.flops == 2 * 500_000_000 * 6
    assert abs(usage.cost_usd - 6 * 0.05 / 1e6) < 1e-15
    assert usage.to_dict()["total_tokens"] == 6
