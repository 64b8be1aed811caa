"""The console's words: every one a page uses is there, in Chinese and in English."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.console import app
from gateway.console.accounts import ROLES
from gateway.console.i18n import LANGUAGES, WORDS, words

TEMPLATES = Path(app.__file__).parent / "templates"


def test_every_word_a_page_uses_is_in_both_languages() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\.([a-z_0-9]+)", template.read_text(encoding="utf-8")))
    # Looked up by value: roles, device statuses, report kinds, refusals.
    used |= {*ROLES, "active", "suspended", "revoked", "unregistered", "component", "event",
             "forbidden", "not_found"}  # fmt: skip
    assert used - set(WORDS) == set()
    for language in LANGUAGES:
        assert all(text.strip() for text in words(language).values())


def test_chinese_is_the_default_and_english_differs() -> None:
    assert LANGUAGES[0] == "zh-CN"
    chinese, english = words("zh-CN"), words("en")
    assert chinese["reports"] == "受理台"
    assert sum(chinese[key] != english[key] for key in WORDS) > len(WORDS) * 0.9
