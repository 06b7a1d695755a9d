"""What a reader of a streamed turn shows, so that every interface ends a turn showing exactly the stored answer.

A turn's stream (``Assistant.stream``) carries tokens, ``reset`` events (the graph discards a draft, or shows a
general-knowledge answer, labelled, once its confidence is checked: never before) and, last, the answer.
:class:`LiveText` turns them into edits of the shown text: ``append`` or ``replace``. The final edit makes the shown
text equal to the answer as stored, whatever was streamed before (a citation added at the end, a refusal in place of
the model's words, a draft replaced by the large model's answer).

With ``hold_documents`` a reader that cannot take back what it showed (a plain OpenAI client reading ``content``
deltas) is never shown a documents answer before it is final: those answers are short, and their drafts are the ones
most often replaced. Chat answers still stream as they are written; one discarded by an escalation (rare: it loops
or is empty) is the only case such a reader sees replaced (the server says so in the stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EditKind = Literal["append", "replace"]
REPLACED_NOTE = "the draft above was replaced by the larger model's answer below"
"""What a reader that cannot take text back is told when a chat draft it was shown is discarded."""


@dataclass(frozen=True)
class Edit:
    """One change to the shown text: append ``text`` to it, or replace all of it by ``text``."""

    kind: EditKind
    text: str


@dataclass
class LiveText:
    """The shown text of one turn, fed the turn's events in order (see the module's docstring)."""

    hold_documents: bool = False
    shown: str = ""
    _route: str = ""
    _trailing: str = field(default="", repr=False)
    _fresh: bool = field(default=True, repr=False)

    def feed(self, event: dict[str, Any]) -> list[Edit]:
        """The edits ``event`` makes (none for events that do not change the text)."""
        kind = event.get("type")
        if kind == "step" and event.get("step") == "route":
            self._route = str((event.get("detail") or {}).get("route", ""))
        elif kind == "token":
            return self._token(str(event.get("text", "")))
        elif kind == "reset":
            return self._replace(str(event.get("text", "")), final=False)
        elif kind == "answer":
            return self._replace(event["answer"].text, final=True)
        return []

    def _token(self, text: str) -> list[Edit]:
        if self.hold_documents and self._route == "FACT":
            return []
        if self._fresh:  # a model's answer is stored stripped
            text = text.lstrip()
            if not text:
                return []
            self._fresh = False
        text = self._trailing + text
        kept = text.rstrip()
        self._trailing = text[len(kept):]  # shown only once more text follows: the stored answer is stripped
        if not kept:
            return []
        self.shown += kept
        return [Edit("append", kept)]

    def _replace(self, text: str, *, final: bool) -> list[Edit]:
        self._trailing, self._fresh = "", True
        if not final:
            kept = text.rstrip()
            self._trailing = text[len(kept):]
            text = kept
            if self.hold_documents and self._route == "FACT":
                return []
        if text.startswith(self.shown):
            rest = text[len(self.shown):]
            self.shown = text
            return [Edit("append", rest)] if rest else []
        self.shown = text
        return [Edit("replace", text)]
