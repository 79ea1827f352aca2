"""Seeded free text: summaries, descriptions and comments, with unicode and newlines on purpose."""
from __future__ import annotations

import random

_VERBS = ("Fix", "Add", "Remove", "Refactor", "Investigate", "Document", "Migrate", "Speed up", "Harden", "Review")
_THINGS = (
    "login page", "billing export", "search index", "mobile sync", "API rate limiter", "nightly backup",
    "invoice PDF", "SSO callback", "data pipeline", "release checklist", "onboarding flow", "audit trail",
    "CSV import", "webhook retries", "dashboard filters", "permission cache",
)
_QUALIFIERS = ("for EU customers", "on Safari", "after upgrade", "in staging", "under load", "for admins", "", "", "")
_UNICODE = ("naïve café", "Zürich – Straße", "東京オフィス", "emoji ✅🚀", "Ελληνικά", "Ñandú", "résumé ‘quotes’", "多语言 текст")
_SENTENCES = (
    "Steps to reproduce are in the attached log.",
    "Customer reported this twice this week.",
    "We should keep backwards compatibility.",
    "See the linked issue for context.",
    "This blocks the next release.",
    "Verified on the latest build.",
    "Needs a decision from the product owner.",
    "Rolled back the hotfix; root cause still open.",
)
WORKLOG_COMMENTS = ("Investigation", "Code review", "Pairing session", "Deployed to staging", "Wrote tests", "")


def summary(r: random.Random) -> str:
    text = f"{r.choice(_VERBS)} {r.choice(_THINGS)} {r.choice(_QUALIFIERS)}".strip()
    if r.random() < 0.08:
        text += f" ({r.choice(_UNICODE)})"
    return text


def paragraph(r: random.Random, sentences: int) -> str:
    return " ".join(r.choice(_SENTENCES) for _ in range(sentences))


def description(r: random.Random) -> str | None:
    roll = r.random()
    if roll < 0.25:
        return None
    parts = [paragraph(r, r.randint(1, 3))]
    if roll > 0.6:  # multi-paragraph text, the case that breaks naive CSV/ADF handling
        parts.append(paragraph(r, r.randint(1, 2)))
    if roll > 0.85:
        parts.append(f"Unicode check: {r.choice(_UNICODE)}\ttab\u00a0nbsp")
    return "\n\n".join(parts) if roll < 0.95 else "\n".join(parts) + "\r\n"


def _comment(r: random.Random) -> str:
    text = paragraph(r, r.randint(1, 2))
    if r.random() < 0.1:
        text += "\n" + r.choice(_UNICODE)
    return text


#: comment bodies are drawn from a seeded pool: a page of issues renders hundreds of them
_COMMENT_POOL = tuple(_comment(random.Random(n)) for n in range(256))


def comment(r: random.Random) -> str:
    return _COMMENT_POOL[int(r.random() * len(_COMMENT_POOL))]


def person_name(r: random.Random) -> str:
    first = r.choice((
        "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Donald", "Frances", "Tim",
        "Hedy", "Edsger", "Katherine", "Dennis", "Sophie", "Mateo", "Aiko", "Olu", "Zoë", "Søren", "Chloé",
        "Priya", "Wei", "Jonas", "Amara", "Diego", "Noor", "Ivan", "Yara",
    ))
    last = r.choice((
        "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Perlman", "Knuth",
        "Allen", "Berners-Lee", "Lamarr", "Dijkstra", "Johnson", "Ritchie", "Wilson", "García", "Tanaka",
        "Adeyemi", "Müller", "Kierkegaard", "Dubois", "Sharma", "Zhang", "Berg", "Okafor", "Rossi", "Haddad",
    ))
    return f"{first} {last}"


def to_html(text: str | None) -> str | None:
    """The `renderedFields` form of wiki text: paragraphs in <p>, escaped."""
    if text is None:
        return None
    import html

    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    return "".join("<p>" + html.escape(p).replace("\n", "<br/>\n") + "</p>" for p in paragraphs)


#: seeded pools the issue renderer picks from by index (cheap: no Random stream per issue)
SUMMARIES = tuple(summary(random.Random(10_000 + n)) for n in range(1024))
DESCRIPTIONS = tuple(description(random.Random(20_000 + n)) for n in range(512))
