"""A deterministic generator of Segment-spec messages for a sample SaaS product.

People sign up over the period (some after browsing anonymously), log in with habits that range
from daily power users to people who lapse after a few days, create projects, buy plans and
add-ons, change their preferences, close accounts and ask to be deleted. A small share of messages
is delivered twice (same ``messageId``), as real pipelines do.

The output is a lazy iterator in timestamp order: the simulation is driven by a heap of pending
actions (signups, sessions, deletes) and emits one day at a time, so memory holds the people
currently active plus one day of messages, and the benchmark can draw millions of messages from
it. Everything comes from one seeded ``random.Random``; the wall clock is never read, so the same
arguments always give the same messages.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge.core.clock import to_utc_aware
from nudge.devtools.sample import catalog

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LAND_CHUNK = 200_000

DUPLICATE_RATE = 0.005  # share of messages delivered a second time with the same messageId
ANONYMOUS_FIRST_RATE = 0.3  # signups that browsed anonymously first
ALIAS_RATE = 0.15  # of those, linked by an alias call rather than by an identify carrying both ids
ANONYMOUS_ONLY_PER_SIGNUP = 0.4  # visitors who browse and never sign up, per signup
NO_EMAIL_RATE = 0.02
UNSUBSCRIBE_RATE = 0.03
PRODUCT_UPDATES_OFF_RATE = 0.08
NEWSLETTER_OPT_IN_RATE = 0.05
UPGRADE_RATE = 0.03  # per session of a free user
ACCOUNT_CLOSE_EVERY, ACCOUNT_CLOSE_AT = 150, 42  # signup ordinals n with n % 150 == 42
DELETE_EVERY, DELETE_AT = 1000, 137  # signup ordinals n with n % 1000 == 137


@dataclass(frozen=True, slots=True)
class Profile:
    """How a kind of user behaves: mean hours between sessions and per-session odds."""

    name: str
    weight: int
    mean_gap_hours: float
    order_odds: float
    project_odds: float
    lapses: bool = False  # stops coming back 1-6 days after signing up


PROFILES = (
    Profile("power", 8, 20.0, 0.10, 0.15),
    Profile("regular", 32, 120.0, 0.08, 0.10),
    Profile("casual", 35, 300.0, 0.06, 0.06),
    Profile("lapsing", 25, 48.0, 0.06, 0.10, lapses=True),
)
_PROFILE_CUM = tuple(itertools.accumulate(p.weight for p in PROFILES))
_PLACE_CUM = tuple(itertools.accumulate(catalog.PLACE_WEIGHTS))
_PLAN_CUM = tuple(itertools.accumulate(catalog.PLAN_WEIGHTS))
_ADD_ON_CUM = tuple(itertools.accumulate(catalog.ADD_ON_WEIGHTS))
_APP_PAGE_CUM = tuple(itertools.accumulate(catalog.APP_PAGE_WEIGHTS))


@dataclass(slots=True)
class _User:
    n: int
    user_id: str
    anonymous_id: str | None
    profile: Profile
    plan: str
    place: tuple[str, str, str, int]  # one of catalog.PLACES
    signup_ms: int
    active_until_ms: int
    unsubscribe_pending: bool
    newsletter_pending: bool
    closes_account: bool
    sessions: int = 0
    deleted: bool = False


# Heap action kinds.
_ANON_LEAD_IN, _SIGNUP, _SESSION, _DELETE, _ANON_VISIT = range(5)


def generate_messages(
    *, users: int = 3000, days: int = 30, end: datetime, seed: int = 7
) -> Iterator[dict[str, Any]]:
    """Yield Segment-spec messages for ``users`` signups over ``[end - days, end)``.

    Messages come in non-decreasing ``timestamp`` order (a duplicate delivery follows its
    original). ``end`` is a UTC instant; a naive datetime is taken as UTC.
    """
    if users < 0:
        raise ValueError(f"users must be >= 0, got {users}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    return _Simulation(users=users, days=days, end=end, seed=seed).run()


def generate_to_ndjson(path: Path | str, **kw: Any) -> int:
    """Write ``generate_messages(**kw)`` to ``path`` as newline-delimited JSON; return the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for message in generate_messages(**kw):
            out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count


def write_sample_workspace(
    landing_dir: Path, *, users: int = 3000, days: int = 30, end: datetime, seed: int = 7
) -> int:
    """Land the sample messages in ``landing_dir`` (chunks of 200k); return how many were accepted.

    Every generated message is valid, so a rejection means the generator and the landing writer
    disagree: that raises rather than leaving a silently thinner sample.
    """
    from nudge.core.landing.writer import land_messages

    messages = generate_messages(users=users, days=days, end=end, seed=seed)
    accepted = 0
    while chunk := list(itertools.islice(messages, LAND_CHUNK)):
        result = land_messages(landing_dir, chunk)
        if result.rejected:
            raise RuntimeError(f"the landing writer rejected sample messages: {result.rejected!r}")
        accepted += result.accepted
    return accepted


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


_FIRST_SLUGS = {name: _ascii_slug(name) for name in catalog.FIRST_NAMES}
_LAST_SLUGS = {name: _ascii_slug(name) for name in catalog.LAST_NAMES}


class _Simulation:
    """One generation run: the heap of pending actions and the per-day buckets of messages."""

    def __init__(self, *, users: int, days: int, end: datetime, seed: int) -> None:
        end = to_utc_aware(end)
        self.users = users
        self.days = days
        self.end_ms = round(end.timestamp() * 1000)
        self.start_ms = self.end_ms - days * DAY_MS
        self.rng = random.Random(seed)
        self.id_offset = self.rng.getrandbits(32)
        self.heap: list[tuple[int, int, int, Any]] = []
        self.buckets: list[list[tuple[int, int, dict[str, Any]]]] = [[] for _ in range(days)]
        self.seq = itertools.count()
        self.signups_per_day = _spread(users, days, self.rng)
        self.next_ordinal = 0
        self.date_prefixes: dict[int, str] = {}

    # --- driving ---------------------------------------------------------------------------------

    def run(self) -> Iterator[dict[str, Any]]:
        for day in range(self.days):
            day_start = self.start_ms + day * DAY_MS
            # Signups are planned two days ahead so anonymous browsing can precede them.
            for planned in (0, 1, 2) if day == 0 else (day + 2,):
                if planned < self.days:
                    self._plan_day(planned, earliest_ms=day_start)
            day_end = day_start + DAY_MS
            while self.heap and self.heap[0][0] < day_end:
                at, _, kind, subject = heapq.heappop(self.heap)
                self._act(at, kind, subject)
            yield from self._flush(day)

    def _push(self, at: int, kind: int, subject: Any) -> None:
        if at < self.end_ms:
            heapq.heappush(self.heap, (at, next(self.seq), kind, subject))

    def _plan_day(self, day: int, *, earliest_ms: int) -> None:
        rng = self.rng
        day_start = self.start_ms + day * DAY_MS
        count = self.signups_per_day[day]
        for at in sorted(day_start + _daytime_ms(rng) for _ in range(count)):
            user = self._new_user(at)
            if user.anonymous_id is not None:
                lead = rng.randint(15 * 60_000, 2 * DAY_MS)
                self._push(max(at - lead, earliest_ms), _ANON_LEAD_IN, user)
            else:
                self._push(at, _SIGNUP, user)
        for _ in range(round(count * ANONYMOUS_ONLY_PER_SIGNUP)):
            self._push(day_start + _daytime_ms(rng), _ANON_VISIT, self._uuid())

    def _act(self, at: int, kind: int, subject: Any) -> None:
        if kind == _ANON_VISIT:
            self._browse_anonymously(at, subject)
        elif kind == _ANON_LEAD_IN:
            self._browse_anonymously(at, subject.anonymous_id)
            self._push(max(subject.signup_ms, at + 60_000), _SIGNUP, subject)
        elif subject.deleted:
            return
        elif kind == _SIGNUP:
            self._sign_up(at, subject)
        elif kind == _SESSION:
            self._session(at, subject)
        else:
            subject.deleted = True
            self._emit(at, {"type": "delete", "userId": subject.user_id})

    def _flush(self, day: int) -> Iterator[dict[str, Any]]:
        bucket = self.buckets[day]
        self.buckets[day] = []
        bucket.sort(key=lambda item: (item[0], item[1]))
        duplicate = self.rng.random
        for at, _, message in bucket:
            message["timestamp"] = self._iso(at)
            yield message
            if duplicate() < DUPLICATE_RATE:
                yield dict(message)

    # --- people ----------------------------------------------------------------------------------

    def _new_user(self, signup_ms: int) -> _User:
        rng = self.rng
        n = self.next_ordinal
        self.next_ordinal += 1
        profile = rng.choices(PROFILES, cum_weights=_PROFILE_CUM)[0]
        place = rng.choices(catalog.PLACES, cum_weights=_PLACE_CUM)[0]
        lapse_after = rng.randint(DAY_MS, 6 * DAY_MS) if profile.lapses else self.end_ms
        return _User(
            n=n,
            user_id=f"usr_{(n * 2654435761 + self.id_offset) % 2**32:08x}",
            anonymous_id=self._uuid() if rng.random() < ANONYMOUS_FIRST_RATE else None,
            profile=profile,
            plan=rng.choices(catalog.PLANS, cum_weights=_PLAN_CUM)[0],
            place=place,
            signup_ms=signup_ms,
            active_until_ms=signup_ms + lapse_after,
            unsubscribe_pending=rng.random() < UNSUBSCRIBE_RATE,
            newsletter_pending=rng.random() < NEWSLETTER_OPT_IN_RATE,
            closes_account=n % ACCOUNT_CLOSE_EVERY == ACCOUNT_CLOSE_AT,
        )

    def _signup_traits(self, user: _User, at: int) -> dict[str, Any]:
        rng = self.rng
        first = rng.choice(catalog.FIRST_NAMES)
        last = rng.choice(catalog.LAST_NAMES)
        timezone, country, _, _ = user.place
        traits: dict[str, Any] = {
            "first_name": first,
            "last_name": last,
            "plan": user.plan,
            "timezone": timezone,
            "country": country,
            "created_at": self._iso(at),
        }
        if rng.random() >= NO_EMAIL_RATE:
            domain = rng.choice(catalog.EMAIL_DOMAINS)
            traits["email"] = f"{_FIRST_SLUGS[first]}.{_LAST_SLUGS[last]}{user.n}@{domain}"
        if rng.random() < PRODUCT_UPDATES_OFF_RATE:
            traits["cio_subscription_preferences"] = {"topics": {"product_updates": False}}
        return traits

    # --- what people do --------------------------------------------------------------------------

    def _browse_anonymously(self, at: int, anonymous_id: str) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            name, path = rng.choice(catalog.MARKETING_PAGES)
            self._page(at, name, path, catalog.MARKETING_SITE, anonymous_id=anonymous_id)
            at += rng.randint(5_000, 180_000)
        if rng.random() < 0.35:
            properties = {"cta": "start_free_trial", "location": rng.choice(catalog.CTA_LOCATIONS)}
            self._track(at, "cta_clicked", properties, anonymous_id=anonymous_id)

    def _sign_up(self, at: int, user: _User) -> None:
        rng = self.rng
        traits = self._signup_traits(user, at)
        if user.anonymous_id is not None and rng.random() < ALIAS_RATE:
            self._emit(
                at, {"type": "alias", "previousId": user.anonymous_id, "userId": user.user_id}
            )
            at += 1_000
            self._emit(at, {"type": "identify", "userId": user.user_id, "traits": traits})
        else:
            identify = {"type": "identify", "userId": user.user_id, "traits": traits}
            if user.anonymous_id is not None:
                identify["anonymousId"] = user.anonymous_id
            self._emit(at, identify)
        signed_up = {"method": rng.choice(catalog.SIGNUP_METHODS), "plan": user.plan}
        self._track(at + 2_000, "signed_up", signed_up, user=user)
        self._page(
            at + rng.randint(5_000, 40_000), "Welcome", "/onboarding", catalog.APP_SITE, user=user
        )
        if user.plan != "free":
            price = catalog.PLAN_PRICES[user.plan]
            self._order(at + rng.randint(60_000, 600_000), user, price, 1)
        if rng.random() < 0.45:
            self._project(at + rng.randint(120_000, 1_800_000), user)
        if user.n % DELETE_EVERY == DELETE_AT:
            self._push(at + rng.randint(2 * DAY_MS, 6 * DAY_MS), _DELETE, user)
        self._schedule_session(at + 30 * 60_000, user)

    def _session(self, at: int, user: _User) -> None:
        rng = self.rng
        profile = user.profile
        user.sessions += 1
        self._track(
            at, "logged_in", {"method": rng.choice(("password", "google", "sso"))}, user=user
        )
        if user.closes_account and user.sessions >= 2:
            reason = rng.choice(("too_expensive", "switched_tool", "project_ended", "other"))
            self._track(
                at + rng.randint(30_000, 300_000), "account_closed", {"reason": reason}, user=user
            )
            return
        t = at
        for _ in range(rng.randint(0, 2)):
            t += rng.randint(3_000, 240_000)
            name, path = rng.choices(catalog.APP_PAGES, cum_weights=_APP_PAGE_CUM)[0]
            self._page(t, name, path, catalog.APP_SITE, user=user)
        if rng.random() < profile.project_odds:
            self._project(t + rng.randint(10_000, 900_000), user)
        if user.plan == "free" and rng.random() < UPGRADE_RATE:
            user.plan = "pro"
            t += rng.randint(10_000, 300_000)
            self._emit(t, {"type": "identify", "userId": user.user_id, "traits": {"plan": "pro"}})
            self._order(t + 2_000, user, catalog.PLAN_PRICES["pro"], 1)
        elif rng.random() < profile.order_odds:
            amount, items = rng.choices(catalog.ADD_ONS, cum_weights=_ADD_ON_CUM)[0]
            self._order(t + rng.randint(10_000, 600_000), user, amount, items)
        if user.unsubscribe_pending:
            user.unsubscribe_pending = False
            self._identify(t + 1_000, user, {"unsubscribed": True})
        elif user.newsletter_pending:
            user.newsletter_pending = False
            topics = {"topics": {"newsletter": True}}
            self._identify(t + 1_000, user, {"cio_subscription_preferences": topics})
        self._schedule_session(at, user)

    def _schedule_session(self, after: int, user: _User) -> None:
        rng = self.rng
        gap_hours = max(0.5, rng.expovariate(1.0 / user.profile.mean_gap_hours))
        at = after + int(gap_hours * HOUR_MS)
        local_hour = (at // HOUR_MS + user.place[3]) % 24
        if local_hour < 7:  # people sleep: move night sessions to the morning
            at += (7 - local_hour) * HOUR_MS + rng.randint(0, 3 * HOUR_MS)
        if at < user.active_until_ms:
            self._push(at, _SESSION, user)

    # --- messages --------------------------------------------------------------------------------

    def _emit(self, at: int, message: dict[str, Any], page: dict[str, str] | None = None) -> None:
        if at >= self.end_ms:
            return
        message["messageId"] = self._uuid()
        message["context"] = {"library": dict(catalog.LIBRARY)}
        if page is not None:
            message["context"]["page"] = page
        bucket = (at - self.start_ms) // DAY_MS
        self.buckets[bucket].append((at, next(self.seq), message))

    def _identify(self, at: int, user: _User, traits: dict[str, Any]) -> None:
        self._emit(at, {"type": "identify", "userId": user.user_id, "traits": traits})

    def _track(
        self,
        at: int,
        event: str,
        properties: dict[str, Any],
        *,
        user: _User | None = None,
        anonymous_id: str | None = None,
    ) -> None:
        message: dict[str, Any] = {"type": "track", "event": event, "properties": properties}
        if user is not None:
            message["userId"] = user.user_id
        else:
            message["anonymousId"] = anonymous_id
        self._emit(at, message)

    def _page(
        self,
        at: int,
        name: str,
        path: str,
        site: str,
        *,
        user: _User | None = None,
        anonymous_id: str | None = None,
    ) -> None:
        url = site + path
        properties = {"path": path, "url": url, "title": f"{name} | Acme Boards"}
        message: dict[str, Any] = {"type": "page", "name": name, "properties": properties}
        if user is not None:
            message["userId"] = user.user_id
            anonymous_id = user.anonymous_id  # browsers keep sending the anonymous id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        self._emit(at, message, page={"path": path, "url": url, "title": properties["title"]})

    def _order(self, at: int, user: _User, amount: float, items: int) -> None:
        properties = {
            "order_id": f"ord_{self.rng.getrandbits(48):012x}",
            "amount": amount,
            "currency": user.place[2],
            "items": items,
            "plan": user.plan,
        }
        self._track(at, "order_completed", properties, user=user)

    def _project(self, at: int, user: _User) -> None:
        properties = {
            "project_id": f"prj_{self.rng.getrandbits(48):012x}",
            "template": self.rng.choice(catalog.PROJECT_TEMPLATES),
        }
        self._track(at, "project_created", properties, user=user)

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def _iso(self, at: int) -> str:
        day, rest = divmod(at, DAY_MS)
        prefix = self.date_prefixes.get(day)
        if prefix is None:
            date = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
            prefix = self.date_prefixes[day] = date.strftime("%Y-%m-%dT")
        hours, rest = divmod(rest, HOUR_MS)
        minutes, rest = divmod(rest, 60_000)
        seconds, millis = divmod(rest, 1000)
        return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def _spread(users: int, days: int, rng: random.Random) -> list[int]:
    """Signups per day: weekdays busier than weekends, a gentle growth trend, summing to ``users``."""
    weights = [
        (1.0 + 0.5 * day / days) * (0.6 if day % 7 in (5, 6) else 1.0) for day in range(days)
    ]
    total = sum(weights)
    counts = [int(users * w / total) for w in weights]
    for day in rng.sample(range(days), users - sum(counts)):
        counts[day] += 1
    return counts


def _daytime_ms(rng: random.Random) -> int:
    """A time of day skewed towards working hours (UTC; the audience spans many time zones)."""
    return min(DAY_MS - 1, max(0, int(rng.gauss(14.5, 4.5) * HOUR_MS)))
