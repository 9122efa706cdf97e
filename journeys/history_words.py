"""A journey transition (a row of ``nudge.journey_transitions``) in words, for ``nudge explain``.

A ``sent`` transition only means the message was handed to the outbox; what became of it is the
delivery ledger's status, which the caller joins in and which is shown instead of "sent"."""

from __future__ import annotations

_DELIVERY = {
    "sending": "being sent, outcome not known yet",
    "sent": "sent",
    "failed": "failed",
    "undeliverable": "undeliverable",
    "skipped": "not sent",
    "dropped": "dropped",
}


def delivery_words(status: str | None, reason: str | None) -> str:
    """The delivery ledger's status of a message; ``None``: not decided yet."""
    if status is None:
        return "not dispatched yet (waiting for the sender, or held by quiet hours)"
    text = _DELIVERY.get(status, status)
    return f"{text}: {reason}" if reason else text


def _onward(to_step: str | None) -> str:
    return f"moved on to {to_step}" if to_step is not None else "the journey ends there"


def transition_words(
    from_step: str | None,
    to_step: str | None,
    action: str,
    detail: str | None,
    channel: str | None = None,
    template: str | None = None,
    status: str | None = None,
    reason: str | None = None,
) -> str:
    """One move in words. ``channel`` .. ``reason`` describe a ``sent`` move's message (from the
    outbox and the delivery ledger)."""
    at = f"step {from_step}"
    match action:
        case "entered":
            return f"entered the journey at step {to_step} (trigger key {detail})"
        case "sent":
            if channel is None:
                return f"{at} queued a message (no longer in the outbox); {_onward(to_step)}"
            return (
                f"{at} queued {channel} template {template}: {delivery_words(status, reason)}; "
                f"{_onward(to_step)}"
            )
        case "waited":
            why = {"condition": "its condition held", "timeout": "it timed out"}.get(
                str(detail), "its wait was over"
            )
            return f"{at}: {why}; {_onward(to_step)}"
        case "window":
            return f"{at}: the window was open; {_onward(to_step)}"
        case "branched":
            return f"{at}: the branch took {detail}; {_onward(to_step)}"
        case "split":
            return f"{at}: the split chose {detail}; {_onward(to_step)}"
        case "updated":
            return f"{at}: set trait {detail}; {_onward(to_step)}"
        case "skipped_if":
            return f"{at} skipped: its if did not hold; {_onward(to_step)}"
        case "moved":
            return f"{at} was removed from the journey; {_onward(to_step)}"
        case "merged":
            return f"{detail} was merged into this person: the entry, at {at}, is theirs now"
        case "exited":
            return f"exited at {at} (reason: {detail})"
        case "converted":
            return f"converted at {at}: the goal was met"
        case "completed":
            return "completed the journey"
    return f"{action} {from_step or '-'} -> {to_step or '-'}" + (f" ({detail})" if detail else "")
