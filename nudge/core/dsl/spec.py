"""Typed form of the authoring formats (segments, journeys, templates, topics, policies).

The YAML described in ``docs/authoring.md`` is parsed into these frozen dataclasses by
``nudge.core.dsl.load``; everything downstream (the segment compiler, the journey engine, the senders)
reads only these types, never raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

# --- where a definition came from (for error messages) -------------------------------------------


@dataclass(frozen=True)
class Origin:
    """The file and item a definition was read from, so errors can name them."""

    file: str
    item: str  # e.g. "segment 'lapsed_buyers'" or "journey 'onboarding'"

    def __str__(self) -> str:
        return f"{self.file}: {self.item}"


# --- comparisons and conditions --------------------------------------------------------------------

ATTRIBUTE_OPERATORS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "contains",
    "starts_with",
    "exists",
    "newer_than",
    "older_than",
    "within_next",
    "before",
    "after",
)
TIMES_OPERATORS = ("eq", "gte", "gt", "lte", "lt")
MESSAGE_STATUSES = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "failed",
    "unsubscribed",
    "converted",
)
CHANNELS = ("email", "sms", "push", "webhook", "slack", "in_app")


@dataclass(frozen=True)
class TriggerRef:
    """A ``where`` operand written ``{trigger: <dotted path>}``: that property of the event that
    started the journey entry (only inside journeys with an ``event`` trigger)."""

    path: tuple[str, ...]

    def __str__(self) -> str:
        return "{trigger: " + ".".join(self.path) + "}"


@dataclass(frozen=True)
class Comparison:
    """One operator and its operand.

    ``value`` keeps its YAML type (int/float/str/bool/list). For ``newer_than``, ``older_than`` and
    ``within_next`` it is a ``timedelta``; for ``before``/``after`` a timezone-aware ``datetime``.
    In a ``where`` item inside a journey it may be a ``TriggerRef``.
    """

    op: str
    value: Any


@dataclass(frozen=True)
class All:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class Everyone:
    pass


@dataclass(frozen=True)
class Attribute:
    name: str
    comparison: Comparison


@dataclass(frozen=True)
class PropertyFilter:
    """A ``where`` item: a dotted property path (split into parts) and a comparison."""

    path: tuple[str, ...]
    comparison: Comparison


SINCE_SCOPES = ("trigger", "entry", "step")


@dataclass(frozen=True, repr=False)
class Performed:
    event: str
    times: Comparison = Comparison("gte", 1)
    within: timedelta | None = None
    where: tuple[PropertyFilter, ...] = ()
    # Inside a journey only: count events after the trigger, the entry start or the step reached.
    since: Literal["trigger", "entry", "step"] | None = None

    def __repr__(self) -> str:
        # Without ``since`` the text is the one written before it existed: journey versions
        # (a hash of the definition's repr) of existing journeys stay the same.
        since = "" if self.since is None else f", since={self.since!r}"
        return (
            f"Performed(event={self.event!r}, times={self.times!r}, within={self.within!r}, "
            f"where={self.where!r}{since})"
        )

    @property
    def keyed(self) -> bool:
        """Whether a ``where`` item compares with the triggering event (``{trigger: ...}``)."""
        return any(isinstance(item.comparison.value, TriggerRef) for item in self.where)

    @property
    def entry_scoped(self) -> bool:
        """Whether the condition depends on the journey entry it is evaluated for."""
        return self.since is not None or self.keyed


@dataclass(frozen=True)
class InSegment:
    segment: str


@dataclass(frozen=True)
class MessageCondition:
    status: str
    channel: str | None = None
    journey: str | None = None
    template: str | None = None
    times: Comparison = Comparison("gte", 1)
    within: timedelta | None = None


@dataclass(frozen=True, repr=False)
class Subscription:
    topic: str
    subscribed: bool
    # None: every channel of the topic (nudge.core.segments.compiler).
    channel: str | None = None

    def __repr__(self) -> str:
        # Without ``channel`` the text is the one written before it existed: journey versions
        # (a hash of the definition's repr) of existing journeys stay the same.
        channel = "" if self.channel is None else f", channel={self.channel!r}"
        return f"Subscription(topic={self.topic!r}, subscribed={self.subscribed!r}{channel})"


@dataclass(frozen=True)
class RandomBucket:
    percent: float
    salt: str = ""


Condition = (
    All
    | AnyOf
    | Not
    | Everyone
    | Attribute
    | Performed
    | InSegment
    | MessageCondition
    | Subscription
    | RandomBucket
)


# --- segments --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A segment written in YAML: either a ``condition`` or (extension) a ``sql`` dbt model body."""

    name: str
    origin: Origin
    condition: Condition | None = None
    sql: str | None = None
    description: str = ""


# --- journeys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentEntered:
    segment: str


@dataclass(frozen=True)
class SegmentExited:
    segment: str


@dataclass(frozen=True)
class EventTrigger:
    name: str
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class AttributeChanged:
    name: str
    to: Any = None
    has_to: bool = False  # distinguishes `to: null` from no `to`


@dataclass(frozen=True)
class DateTrigger:
    attribute: str
    offset: timedelta = timedelta(0)  # negative for "before"
    at: str | None = None  # "HH:MM" local time
    timezone_attribute: str | None = None


@dataclass(frozen=True)
class Broadcast:
    segment: str
    at: datetime | None = None


Trigger = SegmentEntered | SegmentExited | EventTrigger | AttributeChanged | DateTrigger | Broadcast


@dataclass(frozen=True)
class Send:
    channel: str
    template: str
    topic: str | None = None
    transactional: bool = False


@dataclass(frozen=True)
class Wait:
    duration: timedelta


@dataclass(frozen=True)
class WaitUntil:
    condition: Condition
    timeout: timedelta
    on_timeout: Literal["exit", "continue"] = "exit"


@dataclass(frozen=True)
class Window:
    days: tuple[str, ...]  # mon..sun
    start: str  # "HH:MM" (the YAML `from`)
    end: str  # "HH:MM" (the YAML `to`)
    timezone_attribute: str | None = None
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class Branch:
    condition: Condition
    then: tuple[Step, ...] = ()
    otherwise: tuple[Step, ...] = ()  # the YAML `else`


@dataclass(frozen=True)
class SplitPath:
    percent: float
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Split:
    paths: tuple[SplitPath, ...]


@dataclass(frozen=True)
class UpdateAttribute:
    name: str
    value: Any


@dataclass(frozen=True)
class Exit:
    pass


StepAction = Send | Wait | WaitUntil | Window | Branch | Split | UpdateAttribute | Exit


@dataclass(frozen=True)
class Step:
    id: str
    action: StepAction
    if_: Condition | None = None  # the YAML `if` on any step


@dataclass(frozen=True)
class Reentry:
    mode: Literal["never", "always", "after"] = "never"
    after: timedelta | None = None


@dataclass(frozen=True)
class Goal:
    condition: Condition
    within: timedelta | None = None
    exit: bool = True


@dataclass(frozen=True)
class Journey:
    name: str
    origin: Origin
    trigger: Trigger
    steps: tuple[Step, ...]
    entry_filter: Condition | None = None
    reentry: Reentry = Reentry()
    exit_when: Condition | None = None
    exit_on_trigger_lost: bool = True
    goal: Goal | None = None
    holdout_percent: float | None = None
    max_event_age: timedelta = timedelta(hours=72)
    description: str = ""


# --- templates, topics, policies -------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A message template. ``fields`` holds the channel's Jinja sources (subject, html, body, ...)."""

    name: str
    channel: str
    origin: Origin
    fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # The shared layout the ``html`` is put into (email only; ``Content.layouts``).
    layout: str | None = None


# The variable a layout's HTML puts the template's body at (Customer.io writes it the same way).
LAYOUT_CONTENT_VARIABLE = "content"


@dataclass(frozen=True)
class Layout:
    """A shared HTML wrapper for email templates: ``html`` is Jinja with ``{{ content }}`` where
    the template's rendered ``html`` goes (a header, a footer, the styles every email shares)."""

    name: str
    origin: Origin
    html: str


@dataclass(frozen=True)
class Topic:
    name: str
    default_subscribed: bool = True
    # Shown to people on the preference page.
    description: str | None = None
    # The channels the topic's messages may go on (a send on another is a validation error);
    # empty: any. The preference page offers a choice per channel.
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrequencyCap:
    channel: str  # a channel or "any"
    max: int
    per: timedelta


@dataclass(frozen=True)
class QuietHours:
    start: str  # "HH:MM" (the YAML `from`)
    end: str  # "HH:MM" (the YAML `to`)
    timezone_attribute: str | None = None
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class Policies:
    frequency_caps: tuple[FrequencyCap, ...] = ()
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Content:
    """Every definition of a workspace (or a scenario), validated and cross-checked."""

    segments: tuple[Segment, ...] = ()
    journeys: tuple[Journey, ...] = ()
    templates: tuple[Template, ...] = ()
    topics: tuple[Topic, ...] = ()
    policies: Policies = Policies()
    layouts: tuple[Layout, ...] = ()

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def journey(self, name: str) -> Journey | None:
        return next((j for j in self.journeys if j.name == name), None)

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)

    def topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)

    def layout(self, name: str) -> Layout | None:
        return next((layout for layout in self.layouts if layout.name == name), None)
