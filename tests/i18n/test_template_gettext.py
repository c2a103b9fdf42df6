"""Templates translate with the render's own language, looked up once per render.

The template `_()` is ours (marketplace/i18n.py), not Flask-Babel's: it keeps the
render's translations instead of asking Flask-Babel four context lookups per text.
What must not change: a render inside `force_locale` (mail and notices are
rendered in each reader's language during someone else's request) speaks that
language, a macro imported without the page's context still translates, plurals
follow the language's rule, and a variable put into a text is escaped.
"""

from __future__ import annotations

from flask import Flask, render_template_string
from flask_babel import force_locale

PAGE = ("{{ _('Open') }}|{{ ngettext('%(num)d crew-day', '%(num)d crew-days', n) }}"
        "|{{ _('The job %(title)s was cancelled: %(reason)s', title=title, reason='x') }}")


def _render(**values: object) -> list[str]:
    return render_template_string(PAGE, **values).split("|")


def test_a_page_speaks_its_language_and_a_forced_render_the_forced_one(app: Flask) -> None:
    with app.test_request_context("/?lang=fr"):
        assert _render(n=1, title="T")[0] == "Ouvert"
        with force_locale("de"):
            assert _render(n=2, title="T")[:2] == ["Offen", "2 Teamtage"]
        assert _render(n=2, title="T")[0] == "Ouvert"  # back to the page's own


def test_plurals_follow_the_language(app: Flask) -> None:
    with app.test_request_context("/?lang=de"):
        assert [_render(n=n, title="T")[1] for n in (1, 3)] == ["1 Teamtag", "3 Teamtage"]


def test_a_variable_put_into_a_text_is_escaped(app: Flask) -> None:
    with app.test_request_context("/?lang=en"):
        assert _render(n=1, title="<b>Lawn</b>")[2] == \
            "The job &lt;b&gt;Lawn&lt;/b&gt; was cancelled: x"


def test_a_render_without_the_pages_context_translates_as_well(app: Flask) -> None:
    """A macro imported without context sees only the globals: no render translations,
    so `_()` looks them up itself (here: a template rendered outside render_template)."""
    with app.test_request_context("/?lang=es"):
        assert app.jinja_env.from_string("{{ _('Open') }}").render() == "Abierto"
        with force_locale("fr"):
            assert app.jinja_env.from_string("{{ _('Open') }}").render() == "Ouvert"


def test_a_text_may_name_its_variables_like_the_parameters(app: Flask) -> None:
    with app.test_request_context("/?lang=en"):
        assert render_template_string(
            "{{ _('%(string)s %(context)s', string='a', context='b') }}|"
            "{{ ngettext('%(num)d %(plural)s', '%(num)d %(plural)ss', 2, plural='day') }}"
        ) == "a b|2 days"
