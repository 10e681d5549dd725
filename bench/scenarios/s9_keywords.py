"""S9 keyword rules: 1k and 10k keywords (CJK and latin, overlapping ones
included) × 100k messages.

Ours: ``sopflow.engine.keywords.matching.CompiledRules.match`` on every message
(rules built directly as ``CompiledRule`` objects, 10 keywords each; no
database).  Baseline: Python ``re`` — one alternation of the escaped keywords,
longest first, inside a lookahead ``(?=(kw1|kw2|…))`` so a match is tried at
every position; the alternation gives the longest keyword starting there and
the shorter keywords that are its prefixes are added from a precomputed table,
so overlapping keywords are all counted.  It runs on a slice of the messages
and is scaled.  Hardware limit: a raw ``ahocorasick.Automaton.iter`` over the
case-folded messages, without our wrapper.  Correctness: the hit count of
every message is the same for all three.
"""

from __future__ import annotations

import random
import re
from typing import Any

from bench.load import Context, figure, median, timed

#: A fixed pool of CJK characters (so keywords and filler share characters and overlap).
CJK = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000, 50))
LATIN = "abcdefghijklmnopqrstuvwxyz"


NAME = "S9"
ORDER = 20
MUST_BE_ZERO = ("hit_mismatches", "limit_hit_mismatches")


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S9 keyword rules")
    g.add_argument("--s9-keywords", type=int, nargs="+", default=[1_000, 10_000], help="(quick: 100)")
    g.add_argument("--s9-messages", type=int, default=100_000, help="(quick: 1,000)")
    g.add_argument("--s9-baseline-messages", type=int, default=10_000, help="slice for the regex baseline")


def keywords(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct lower-case keywords: 60% CJK (2–4 characters), 25% latin
    (3–8 letters), 15% made to overlap another (it extended, or inside it)."""
    out: dict[str, None] = {}
    for _ in range(n * 20):
        if len(out) >= n:
            break
        roll = rng.random()
        if roll < 0.15 and out:
            base = rng.choice(list(out)[-200:])
            word = (
                base + "".join(rng.choice(CJK) for _ in range(rng.randint(1, 2)))
                if rng.random() < 0.5
                else rng.choice(CJK) + base
            )
        elif roll < 0.75:
            word = "".join(rng.choice(CJK) for _ in range(rng.randint(2, 4)))
        else:
            word = "".join(rng.choice(LATIN) for _ in range(rng.randint(3, 8)))
        out.setdefault(word)
    return list(out)


def messages(n: int, words: list[str], rng: random.Random) -> list[str]:
    """Chat-like messages of 10–80 characters with 0–3 keywords each; latin in mixed case."""
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.6:
                parts.append("".join(rng.choice(CJK) for _ in range(rng.randint(2, 15))))
            elif kind < 0.8:
                parts.append(" " + "".join(rng.choice(LATIN) for _ in range(rng.randint(2, 9))) + " ")
            else:
                parts.append(rng.choice("，。！？ 123"))
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            word = rng.choice(words)
            if word.isascii() and rng.random() < 0.3:
                word = word.upper()
            parts.insert(rng.randint(0, len(parts)), word)
        out.append("".join(parts)[:200])
    return out


def regex_baseline(words: list[str]) -> Any:
    """A counter of every (overlapping) keyword occurrence with one ``re`` alternation."""
    pattern = re.compile("(?=(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + "))")
    known = set(words)
    shorter = {w: sum(1 for i in range(1, len(w)) if w[:i] in known) for w in words}

    def count(text: str) -> int:
        return sum(1 + shorter[m.group(1)] for m in pattern.finditer(text.casefold()))

    return count


def run(ctx: Context) -> dict[str, Any]:
    import ahocorasick
    from sopflow.engine.keywords.matching import CompiledRule, CompiledRules

    a = ctx.args
    sizes = [100] if ctx.quick else a.s9_keywords
    n_msgs = 1_000 if ctx.quick else a.s9_messages
    n_base = n_msgs if ctx.quick else min(n_msgs, a.s9_baseline_messages)
    deadline = ctx.deadline("S9")
    rows, counters = [], {"messages_checked": 0, "hit_mismatches": 0, "limit_hit_mismatches": 0}
    for k in sizes:
        rng = random.Random(9000 + k)
        words = keywords(k, rng)
        texts = messages(n_msgs, words, rng)
        build_s, rules = timed(
            lambda words=words: CompiledRules(
                CompiledRule(
                    id=i // 10 + 1, name=f"rule {i // 10 + 1}", keywords=tuple(words[i : i + 10]), actions=()
                )
                for i in range(0, len(words), 10)
            )
        )
        ctx.log(f"S9: {len(words):,} keywords × {n_msgs:,} messages (rules built in {build_s:.2f} s)")

        ours_s, per_text = [], []
        for _ in range(ctx.runs):
            seconds, per_text = timed(lambda rules=rules, texts=texts: [len(rules.match(t)) for t in texts])
            ours_s.append(seconds)
            deadline.check()
        hits = sum(per_text)

        automaton = ahocorasick.Automaton()
        for w in words:
            automaton.add_word(w.casefold(), w)
        automaton.make_automaton()
        limit_s, limit_per_text = [], []
        for _ in range(ctx.runs):
            seconds, limit_per_text = timed(
                lambda texts=texts, automaton=automaton: [
                    sum(1 for _ in automaton.iter(t.casefold())) for t in texts
                ]
            )
            limit_s.append(seconds)
            deadline.check()

        build_re_s, count = timed(lambda words=words: regex_baseline(words))
        sample = texts[:n_base]
        base_s, base_per_text = [], []
        for _ in range(ctx.runs):
            seconds, base_per_text = timed(lambda sample=sample, count=count: [count(t) for t in sample])
            base_s.append(seconds)
            deadline.check()

        counters["messages_checked"] += len(sample)
        counters["hit_mismatches"] += sum(1 for x, y in zip(per_text, base_per_text, strict=False) if x != y)
        counters["limit_hit_mismatches"] += sum(
            1 for x, y in zip(per_text, limit_per_text, strict=True) if x != y
        )
        base_med = median(base_s)
        rows.append(
            {
                "id": "S9",
                "what": f"keyword rules, {len(words):,} keywords",
                "size": f"{n_msgs:,} messages",
                "ours": figure(
                    median(ours_s), n_msgs, "msgs/s", ours_s, hits=hits, build_seconds=round(build_s, 3)
                ),
                "baseline": figure(
                    base_med * n_msgs / len(sample),
                    n_msgs,
                    "msgs/s",
                    what=(
                        f"`re` lookahead alternation + prefix table, {len(sample):,} messages "
                        f"in {base_med:.2f} s, scaled"
                    ),
                    measured_seconds=round(base_med, 3),
                    measured_count=len(sample),
                    runs=[round(x, 4) for x in base_s],
                    build_seconds=round(build_re_s, 3),
                ),
                "limit": figure(
                    median(limit_s), n_msgs, "msgs/s", limit_s, what="raw `Automaton.iter` on casefolded text"
                ),
                "bound": (
                    "the automaton pass itself (about half), then Python per occurrence: a `Hit` "
                    f"each, sorted ({len(rules.rules):,} rules; CPU, one core)"
                ),
            }
        )
    return {"scenario": "S9", "title": "keyword rules", "rows": rows, "counters": counters}
