"""Routing a question to FACT, MATH or CHAT: the calculator's parser, then exemplar similarity, then the small model.

Stages run cheapest first and stop at the first confident decision:
1. ``tools.extract_expression``: plain arithmetic is MATH (a calculator expression; no model is involved);
2. embedding similarity to labelled exemplars (k nearest neighbours): decides when the vote is clear;
3. the small model, its output constrained to ``{"route": "FACT" | "MATH" | "CHAT"}`` by a JSON schema.
Only the user's question is ever routed: retrieved text never reaches the router.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from models.base import ChatModel, Usage
from retrieval.embedders import Embedder
from tools.words import extract_expression

Route = Literal["FACT", "MATH", "CHAT"]
ROUTES: tuple[Route, ...] = ("FACT", "MATH", "CHAT")

EXEMPLARS: dict[Route, tuple[str, ...]] = {
    "FACT": (
        "Who wrote Pride and Prejudice?", "When did the Berlin Wall fall?", "What is the capital of Australia?",
        "Which river flows through Cairo?", "How many moons does Mars have?", "Where is the Taj Mahal located?",
        "What year did the first Moon landing happen?", "Who was the first president of the United States?",
        "What does DNA stand for?", "Which team won the 2010 World Cup?", "What language is spoken in Brazil?",
        "Who discovered penicillin?", "What is the tallest mountain in Africa?", "In what city was the treaty signed?",
        "What was the name of the ship that sank in 1912?", "Which company makes the iPhone?",
        "Who painted the Mona Lisa?", "What is the population of Tokyo?", "When was the university founded?",
        "What did the committee decide in 1998?", "Which element has the chemical symbol Fe?",
        "What is the name of the stadium where the final was played?", "What causes the disease?",
        "What type of government does the country have?", "Who was the emperor during the war?",
        "How long is the Nile?", "What award did the film win?", "Which architect designed the building?",
        "What is the largest city in Canada?", "How many people attended the ceremony?",
        "What percentage of the population lives in cities?", "Which scientist proposed the theory?",
        "What was the original name of the company?", "Who succeeded the king after his death?",
    ),
    "MATH": (
        "A baker makes 24 cookies and sells 3 boxes of 5. How many cookies are left?",
        "If a car travels 60 miles per hour for 3.5 hours, how far does it go?",
        "Sara has 12 apples and gives a third of them to Tom. How many does she keep?",
        "A shirt costs $25 and is on sale for 20% off. What is the sale price?",
        "Tickets cost $8 for adults and $5 for children. How much do 3 adults and 4 children pay?",
        "John earns $15 an hour and works 38 hours a week. How much does he earn in 4 weeks?",
        "A rectangle is 7 cm wide and 12 cm long. What is its area?",
        "There are 30 students and 40% of them are boys. How many girls are there?",
        "Maria read 25 pages on Monday and twice as many on Tuesday. How many pages did she read in total?",
        "A tank holds 500 liters and leaks 12 liters per hour. How much is left after 9 hours?",
        "If 4 pencils cost $1.20, how much do 10 pencils cost?",
        "Tom is 3 times as old as his son, who is 11. How old will Tom be in 5 years?",
        "A farmer has 45 cows, buys 18 more and then sells 20. How many cows does he have now?",
        "Each box holds 12 eggs. How many boxes are needed for 150 eggs?",
        "Lisa saves $35 a week. How many weeks will it take her to save $420?",
        "A recipe needs 2.5 cups of flour per cake. How much flour is needed for 6 cakes?",
        "The price rose from $80 to $92. By what percent did it increase?",
        "Three friends split a $96 bill equally and each adds $4 for the tip. How much does each pay?",
        "Kim ran 5 km on each of 6 days and 8 km on the seventh day. How far did she run that week?",
        "A class collected 230 cans in the first week and 15 fewer in the second. How many cans in total?",
        "A garden has 8 rows of 14 plants. If 19 plants die, how many remain?",
        "Ben buys 3 notebooks at $2.75 each and a pen for $1.50 and pays with $20. What is his change?",
        "A store sold 120 shirts on Friday, half as many on Saturday and 35 on Sunday. How many did it sell?",
        "Jenny has twice as many marbles as Mark, and Mark has 14. How many marbles do they have together?",
        "A pool is filled at 40 gallons per minute. How long does it take to fill 1,200 gallons?",
        "If you draw two cards from a deck of 52, what is the probability that both are hearts?",
        "Solve for x: 3x + 7 = 25.", "If 2a - b = 10 and a + b = 11, what is a?",
        "What is the sum of all even numbers between 1 and 50?",
        "A loan of $2,000 grows at 5% interest per year. How much is owed after 3 years?",
    ),
    "CHAT": (
        "Write a short poem about the ocean.", "Help me draft an email to my landlord about a broken heater.",
        "Give me three tips for better sleep.", "Explain recursion to a beginner.",
        "Tell me a joke about programmers.", "How do I reverse a list in Python?",
        "Summarize the pros and cons of remote work.", "Write a haiku about autumn.",
        "What should I cook for dinner tonight?", "Translate 'good morning' into Spanish and French.",
        "Suggest a name for my new bakery.", "Rewrite this sentence to sound more formal: we gotta finish by friday.",
        "Compose a birthday message for my grandmother.", "Pretend you are a pirate and describe your ship.",
        "What are some good strategies for learning a new language?",
        "Write a function in JavaScript that checks whether a string is a palindrome.",
        "Help me plan a three-day trip to Rome.", "Describe the feeling of the first snow of winter.",
        "Give me a motivational quote and explain it.", "Hi! How are you today?",
        "Draft a cover letter for a junior data analyst position.", "Compare cats and dogs as pets.",
        "Write a limerick about a cat who loves pizza.", "Brainstorm ideas for a science fair project.",
        "Explain the difference between a list and a tuple.", "Create a workout plan for a beginner.",
        "Critique this opening line of my novel: It was a dark and stormy night.",
        "Act as a tour guide and introduce your city.", "What do you think about the role of AI in education?",
        "Write a dialogue between a teacher and a student about homework.", "Thanks, that was helpful!",
        "Imagine you are a detective and solve a mystery in a short story.",
        "Write a persuasive paragraph about why people should recycle.",
        "Why do you think people enjoy horror movies?", "What are some ways to stay productive when working from home?",
        "How does social media shape the way teenagers see themselves?",
        "A man pushes his car to a hotel and tells the owner he is bankrupt. Why?",
        "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies? Explain your reasoning.",
        "Here is a riddle: what has keys but cannot open locks?", "Now make it shorter and funnier.",
        "Can you rephrase your last answer in simpler words?", "What if the story were set in the future instead?",
        "What is the meaning of life, in your opinion?", "Discuss the ethical issues of genetic engineering.",
        "What could explain why my sourdough bread does not rise?",
    ),
}

_NUMBER = re.compile(r"(?<![A-Za-z])\$?\d[\d,]*(?:\.\d+)?%?")
_WH_START = re.compile(r"^(?:what|who|whom|whose|when|where|which|why|how|in what|on what|at what|from what|"
                       r"to what|by what|during what|for what|with what|according to)\b", re.IGNORECASE)
_WH_ANYWHERE = re.compile(r"\b(?:what|who|whom|whose|when|where|which|how many|how much)\b", re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:write|compose|draft|describe|explain|imagine|pretend|create|give|tell|help|suggest|rewrite|"
    r"translate|summari[sz]e|list|act|brainstorm|design|develop|implement|edit|craft|compare|evaluate|discuss|"
    r"provide|generate|make|plan|critique|analy[sz]e|identify|extract|can you|could you|would you|i want|i need|"
    r"i'm|i am|let's|hi|hello|thanks|thank you|given|consider|suppose|based on|read|use|find out|share|outline|"
    r"elaborate|now|try|include|name|please)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.?!:])\s+|\n+")
_MATH_WORDS = re.compile(r"\b(?:probability|remainder|integers?|equation|divided by|solve for|"
                         r"how many (?:more|fewer|less|in total|altogether|left|remain))\b", re.IGNORECASE)
_OPEN_ENDED = re.compile(r"^(?:how do (?:i|you|we)\b|how to\b|what if\b|what are some|what could|what would|"
                         r"what should|what do you|how do(?:es)? (?:the )?\w+ (?:shape|affect|influence|impact|relate)|"
                         r"how (?:can|could|should|would) (?:i|we|you)\b)", re.IGNORECASE)
# Words that only make sense after an earlier turn: "your previous reply", "the above question", "what if ...".
_REFERS_BACK = re.compile(r"\b(?:your (?:previous|earlier|last|above|first) (?:reply|answer|response|question)|"
                          r"the (?:above|previous|original|same) (?:question|answer|reply|problem|task|text|code)|"
                          r"(?:do|repeat) the same|what if|how about|what about|instead)\b|^(?:now|then|and|also)\b",
                          re.IGNORECASE)
# A follow-up in a thread leans towards the route of the turn before; more so when it refers back to it.
# Chosen before measuring, not tuned: worth two of the seven neighbours' votes, six when the question refers back.
FOLLOW_UP_VOTES = 2.0
REFERS_BACK_VOTES = 4.0


def question_shape(question: str) -> dict[str, float]:
    """Cheap structural features: numbers, words, sentences, lines, wh-words, instructions, maths words."""
    text = question.strip()
    sentences = [part for part in _SENTENCE_END.split(text) if part.strip()]
    return {
        "numbers": float(len(_NUMBER.findall(text))),
        "words": float(len(text.split())),
        "sentences": float(len(sentences)),
        "lines": float(text.count("\n") + 1),
        "wh_question": float(bool(_WH_START.match(text)) and text.endswith("?")),
        "asks_what": float(bool(_WH_ANYWHERE.search(text)) and text.rstrip().endswith("?")),
        "instruction": float(any(_INSTRUCTION.match(part.strip()) for part in sentences)),
        "open_ended": float(any(_OPEN_ENDED.match(part.strip()) for part in sentences)),
        "questions": float(text.count("?")),
        "maths": float(bool(_MATH_WORDS.search(text))),
        "refers_back": float(bool(_REFERS_BACK.search(text))),
    }


def shape_votes(shape: dict[str, float], previous: Route | None = None) -> dict[Route, float]:
    """Extra votes from the question's shape (and, in a thread, the previous turn's route), added to the exemplars'.

    A word problem has numbers to compute with (or a term like "probability"); a factual question is one short
    wh-question; an instruction in any sentence ("... Explain your reasoning."), several questions, an open-ended
    question ("What are some ...", "How do I ...") or a multi-line input (a passage, a table, code) is a chat
    request. A follow-up reads like a new question out of context ("And the second one?"), so it leans towards
    the route of the turn it follows.
    """
    votes: dict[Route, float] = {"FACT": 0.0, "MATH": 0.0, "CHAT": 0.0}
    if shape["maths"]:
        votes["MATH"] += 4.0
    elif shape["numbers"] < 2:
        votes["MATH"] -= 10.0
    elif shape["words"] >= 20:
        votes["MATH"] += 2.0
    if shape["words"] <= 25 and shape["sentences"] == 1 and not shape["open_ended"]:
        votes["FACT"] += 4.0 if shape["wh_question"] else 2.0 if shape["asks_what"] else 0.0
    if shape["instruction"]:
        votes["CHAT"] += 5.0
    if shape["questions"] >= 2 or shape["open_ended"]:
        votes["CHAT"] += 3.0
    if shape["lines"] >= 3:
        votes["CHAT"] += 3.0
    if shape["words"] > 40 and shape["numbers"] < 2:
        votes["CHAT"] += 2.0
    if previous is not None:
        votes[previous] += FOLLOW_UP_VOTES + (REFERS_BACK_VOTES if shape["refers_back"] else 0.0)
    return votes


ROUTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"route": {"type": "string", "enum": list(ROUTES)}},
    "required": ["route"],
    "additionalProperties": False,
}
ROUTER_PROMPT = (
    "Classify the user's message. FACT: a question about facts that documents or an encyclopedia could answer. "
    "MATH: a calculation or a word problem with numbers to compute. CHAT: anything else (writing, advice, code, "
    "opinions, conversation). Reply with JSON only."
)


@dataclass(frozen=True)
class RouteDecision:
    """Where a question goes and why: the deciding stage, its scores, and the calculator expression for MATH."""

    route: Route
    stage: Literal["calculator", "exemplars", "model", "forced", "documents"]
    reason: str
    expression: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    usage: Usage | None = None

    @property
    def plain_arithmetic(self) -> bool:
        """True when the question is plain arithmetic the calculator answers without a model."""
        return self.expression is not None


class Router(Protocol):
    """Decides the route of one question (never of retrieved text)."""

    def route(self, question: str, previous: Route | None = None) -> RouteDecision:
        """The route of ``question``; ``previous`` is the route of the thread's last turn, if any."""
        ...


class CascadeRouter:
    """Calculator parser, then k-nearest exemplars plus the question's shape, then (if still close) the small model."""

    def __init__(self, embedder: Embedder, model: ChatModel | None = None, *, neighbours: int = 7,
                 min_margin: float = 3.0, exemplars: dict[Route, tuple[str, ...]] | None = None) -> None:
        self.embedder = embedder
        self.model = model
        self.neighbours = neighbours
        self.min_margin = min_margin
        examples = exemplars or EXEMPLARS
        self._labels: list[Route] = [route for route in ROUTES for _ in examples[route]]
        self._vectors = embedder.embed_passages([text for route in ROUTES for text in examples[route]])

    def route(self, question: str, previous: Route | None = None) -> RouteDecision:
        """Plain arithmetic to the calculator; otherwise exemplar votes plus shape votes (and the previous route)."""
        expression = extract_expression(question)
        if expression is not None:
            return RouteDecision("MATH", "calculator", "plain arithmetic the calculator parses", expression)
        similarities = self._vectors @ self.embedder.embed_queries([question])[0]
        nearest = np.argsort(-similarities)[: self.neighbours]
        votes = Counter(self._labels[i] for i in nearest)
        shape = question_shape(question)
        extra = shape_votes(shape, previous)
        totals = {route: votes[route] + extra[route] for route in ROUTES}
        ranked = sorted(ROUTES, key=lambda route: -totals[route])
        winner, margin = ranked[0], totals[ranked[0]] - totals[ranked[1]]
        scores: dict[str, float] = {route: float(totals[route]) for route in ROUTES} | shape
        if margin >= self.min_margin or self.model is None:
            return RouteDecision(winner, "exemplars", f"{votes[winner]} of {self.neighbours} nearest exemplars and "
                                 f"the question's shape favour {winner} (margin {margin:g})", scores=scores)
        return self._ask_model(question, winner, scores)

    def _ask_model(self, question: str, fallback: Route, scores: dict[str, float]) -> RouteDecision:
        assert self.model is not None
        completion = self.model.chat(
            [{"role": "system", "content": ROUTER_PROMPT}, {"role": "user", "content": question}],
            max_tokens=16, temperature=0.0, json_schema=ROUTER_SCHEMA,
        )
        try:
            route = json.loads(completion.text)["route"]
        except (ValueError, KeyError, TypeError):
            route = None
        if route not in ROUTES:
            return RouteDecision(fallback, "exemplars", "the model's answer was unusable; exemplar vote kept",
                                 scores=scores, usage=completion.usage)
        return RouteDecision(route, "model", "exemplar vote was split; the small model decided", scores=scores,
                             usage=completion.usage)
