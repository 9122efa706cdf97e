"""Render message templates: Jinja2 in a sandbox, strict about undefined variables.

Only the ``html`` field is autoescaped (a subject, a text part or an SMS body must not gain
``&amp;``). In a Slack message's ``text`` and ``blocks`` the values written into the template
have Slack's control characters escaped (``&``, ``<``, ``>``): a trait holding ``<!channel>`` or
``<https://evil.example|Sign in>`` is shown as written, never a mention or a disguised link; the
template's own text keeps its links and mentions. An undefined variable without a ``default``
raises ``RenderError`` naming the template, the field and the dotted variable
(``user.first_name``), so the send is recorded as failed instead of going out blank. Rendering is bounded in output size, value sizes and work
(``senders.template_limits``): a template past a bound is a ``RenderError``, never a MemoryError
or a hang. A field that becomes an email header (``subject``) is refused with a
``RenderError`` when a value put into it could add a header or a body (a line break, also one hidden
in an RFC 2047 encoded word): the message is recorded as a permanent failure instead of being
handed to the provider. Each field is compiled once per ``TemplateRenderer`` (one per dispatch).

An email template with a ``layout`` has its rendered ``html`` put into the layout's html where that
writes ``{{ content }}`` (as markup: the body was escaped when it was rendered). A text part
derived from the html is put into the layout's html turned into text the same way, so it carries
the layout's header and footer too; a ``text`` the template writes is used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from markupsafe import Markup

from nudge.core.dsl.spec import LAYOUT_CONTENT_VARIABLE, Layout, Template
from senders.mime import UnsafeHeaderValue, check_header_value
from senders.template_limits import BoundedEnvironment, LimitExceeded
from senders.unsubscribe import preferences_url

HTML_FIELDS = frozenset({"html"})
# Per channel, the fields whose values are escaped for the channel's markup (see the module).
SLACK_FIELDS = frozenset({"text", "blocks"})
# How the values written into a field are escaped: not at all, as HTML, or for Slack.
Escaping = Literal["none", "html", "slack"]
# Per channel, the template fields that become message headers, and the header each becomes.
HEADER_FIELDS: dict[str, dict[str, str]] = {"email": {"subject": "Subject"}}


class RenderError(Exception):
    """A template could not be rendered for one message; ``str(err)`` is the ledger reason."""

    def __init__(self, template: str, field: str, problem: str, variable: str | None = None):
        self.template = template
        self.field = field
        self.variable = variable
        super().__init__(f"render error in template {template!r}, field {field!r}: {problem}")


class _Scope(dict):
    """A context mapping that knows its dotted path, so undefined lookups can be named in full."""

    __slots__ = ("nudge_path",)

    def __init__(self, path: str, items: Mapping[str, Any]):
        super().__init__((k, _scoped(f"{path}.{k}", v)) for k, v in items.items())
        self.nudge_path = path


def _scoped(path: str, value: Any) -> Any:
    return _Scope(path, value) if isinstance(value, Mapping) else value


class _NamingUndefined(StrictUndefined):
    """StrictUndefined whose error carries the full dotted path of the missing value."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        parent = getattr(self._undefined_obj, "nudge_path", None)
        name = str(self._undefined_name)
        err = self._undefined_exception(self._undefined_message)
        err.nudge_variable = f"{parent}.{name}" if parent else name  # type: ignore[attr-defined]
        raise err


# Jinja binds Undefined's operators to the base class's failing function; point them at ours.
for _name, _value in {**vars(Undefined), **vars(StrictUndefined)}.items():
    if _value is Undefined._fail_with_undefined_error and _name.startswith("__"):
        setattr(_NamingUndefined, _name, _NamingUndefined._fail_with_undefined_error)


@dataclass(frozen=True)
class RenderContext:
    """Everything a template may refer to, for one message."""

    user_id: str
    traits: Mapping[str, Any]
    event: Mapping[str, Any] | None
    journey: str
    step: str
    delivery_id: str
    unsubscribe_url: str

    def variables(self, *, preferences: bool = True) -> dict[str, Any]:
        """The template's variables; without ``preferences``, no ``preferences_url`` (a signed
        link, a good part of the cost of rendering a short email, which a template not naming it
        does not need)."""
        variables = {
            "user": _Scope("user", {**self.traits, "id": self.user_id}),
            "event": _Scope("event", self.event or {}),
            "journey": self.journey,
            "step": self.step,
            "delivery_id": self.delivery_id,
            "unsubscribe_url": self.unsubscribe_url,
        }
        if preferences:
            variables["preferences_url"] = preferences_url(self.user_id)
        return variables


class TemplateRenderer:
    """Renders the templates of one content set, compiling each field source once."""

    def __init__(self, templates: Iterable[Template], layouts: Iterable[Layout] = ()):
        self._templates = {t.name: t for t in templates}
        self._layouts = {layout.name: layout for layout in layouts}
        self._envs: dict[Escaping, BoundedEnvironment] = {
            "none": BoundedEnvironment(undefined=_NamingUndefined, autoescape=False),
            "html": BoundedEnvironment(undefined=_NamingUndefined, autoescape=True),
            "slack": BoundedEnvironment(
                undefined=_NamingUndefined, autoescape=False, finalize=_slack_escaped
            ),
        }
        self._compiled: dict[tuple[str, str, Escaping], JinjaTemplate] = {}
        self._text_sources: dict[str, str] = {}
        self._names_preferences: dict[str, bool] = {}

    def template(self, name: str) -> Template:
        try:
            return self._templates[name]
        except KeyError:
            raise RenderError(name, "-", "no template with this name is defined") from None

    def render(self, name: str, context: RenderContext) -> dict[str, Any]:
        """Render every field of template ``name``; for email, derive ``text`` from ``html``."""
        template = self.template(name)
        variables = context.variables(preferences=self._uses_preferences_url(template))
        content = {
            key: self._render_value(
                template.name, key, value, variables, _escaping(template.channel, key)
            )
            for key, value in template.fields.items()
        }
        for field, header in HEADER_FIELDS.get(template.channel, {}).items():
            try:
                check_header_value(header, str(content.get(field, "")))
            except UnsafeHeaderValue as err:
                raise RenderError(template.name, field, str(err)) from None
        if template.channel != "email" or not content.get("html"):
            return content
        body = content["html"]
        derive_text = not content.get("text")
        if derive_text:
            source = str(template.fields["html"])
            content["text"] = self._derived_text(template.name, source, variables, body)
        layout = self._layout(template)
        if layout is not None:
            field = f"html (layout {layout.name!r})"
            inside = {**variables, LAYOUT_CONTENT_VARIABLE: Markup(body)}
            content["html"] = self._render_string(template.name, field, layout.html, inside, "html")
            if derive_text:
                inside = {**variables, LAYOUT_CONTENT_VARIABLE: content["text"]}
                content["text"] = self._derived_text(
                    template.name, layout.html, inside, content["html"], layout=layout.name
                )
        return content

    def _uses_preferences_url(self, template: Template) -> bool:
        """Whether ``preferences_url`` is written anywhere in the template's fields or its
        layout (a template can only name a variable literally)."""
        uses = self._names_preferences.get(template.name)
        if uses is None:
            layout = self._layouts.get(template.layout) if template.layout else None
            sources = [*_strings(template.fields), *([layout.html] if layout else [])]
            uses = any("preferences_url" in source for source in sources)
            self._names_preferences[template.name] = uses
        return uses

    def _layout(self, template: Template) -> Layout | None:
        if template.layout is None:
            return None
        try:
            return self._layouts[template.layout]
        except KeyError:
            problem = f"no layout named {template.layout!r} is defined"
            raise RenderError(template.name, "layout", problem) from None

    def _derived_text(
        self,
        template: str,
        html_source: str,
        variables: dict[str, Any],
        html: str,
        *,
        layout: str | None = None,
    ) -> str:
        """The text part of an email written with only ``html`` (of the template, or of its
        ``layout`` around the text already derived).

        The html *source* is turned into a text template once (fast, and a user's values are not
        parsed as markup); if that does not compile (Jinja inside tag syntax), the rendered html
        of this message is converted instead."""
        key = template if layout is None else f"{template}\0{layout}"
        source = self._text_sources.get(key)
        if source is None:
            source = self._text_sources[key] = html_to_text(html_source)
        field = "text (from html)" if layout is None else f"text (from layout {layout!r})"
        try:
            return self._render_string(template, field, source, variables, "none")
        except RenderError:
            return html_to_text(html)

    def _render_value(
        self,
        template: str,
        field: str,
        value: Any,
        variables: dict[str, Any],
        escaping: Escaping,
    ) -> Any:
        """Render strings anywhere inside ``value`` (nested ``data``, ``json``, ``blocks``...)."""
        if isinstance(value, str):
            return self._render_string(template, field, value, variables, escaping)
        if isinstance(value, Mapping):
            return {
                k: self._render_value(template, f"{field}.{k}", v, variables, escaping)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [
                self._render_value(template, f"{field}[{i}]", v, variables, escaping)
                for i, v in enumerate(value)
            ]
        return value

    def _render_string(
        self,
        template: str,
        field: str,
        source: str,
        variables: dict[str, Any],
        escaping: Escaping,
    ) -> str:
        compiled = self._compile(template, field, source, escaping)
        env = self._envs[escaping]
        try:
            return env.render_bounded(compiled, variables)
        except LimitExceeded as err:
            raise RenderError(template, field, f"refused: {err}") from None
        except SecurityError as err:
            raise RenderError(template, field, f"blocked by the sandbox: {err}") from None
        except TemplateError as err:
            undefined = getattr(err, "nudge_variable", None)
            if undefined is not None:
                raise RenderError(
                    template, field, f"undefined variable {undefined!r}", variable=undefined
                ) from None
            raise RenderError(template, field, str(err)) from None
        except Exception as err:  # a filter or expression failing on this user's data
            raise RenderError(template, field, f"{type(err).__name__}: {err}") from None

    def _compile(self, template: str, field: str, source: str, escaping: Escaping) -> JinjaTemplate:
        key = (template, field, escaping)
        compiled = self._compiled.get(key)
        if compiled is None:
            env = self._envs[escaping]
            try:
                compiled = env.from_string(source)
            except TemplateSyntaxError as err:
                raise RenderError(
                    template, field, f"syntax error on line {err.lineno}: {err.message}"
                ) from None
            # A plain dict instead of Jinja's ChainMap over the environment's globals: every
            # render copies the globals, and iterating a ChainMap made that most of the cost of
            # a short field (10 us -> 4 us). Nothing changes the environment's globals later.
            compiled.globals = dict(compiled.globals)
            self._compiled[key] = compiled
        return compiled


def _escaping(channel: str, field: str) -> Escaping:
    """How the values written into ``field`` of a ``channel`` template are escaped."""
    if field in HTML_FIELDS:
        return "html"
    if channel == "slack" and field in SLACK_FIELDS:
        return "slack"
    return "none"


def _slack_escaped(value: Any) -> str:
    """A value as Slack shows it literally: ``&``, ``<`` and ``>`` escaped (Slack's rule for
    message text). An undefined value raises here as it would when printed."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a template field's value (nested ``data``, ``json``, ``blocks``...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# --- HTML to text ------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "hr",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and not href.startswith(("#", "javascript:")) and href != label:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML body: blocks become paragraphs, links keep URLs."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
