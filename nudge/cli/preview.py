"""``nudge preview`` and ``nudge send-test``: one template, rendered as a real send renders it.

``preview`` reads the user from the warehouse opened read-only and prints what they would get;
``send-test`` sends one message marked ``[TEST]`` to an address given, through the provider
configured for the template's channel, and records it in the delivery ledger as a test send
(``senders.one_off``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from email import message_from_bytes, policy
from email.message import MIMEPart
from pathlib import Path
from typing import Any

from nudge.cli.main import (
    BUSY_EXIT_STATUS,
    INVALID_EXIT_STATUS,
    require_built_warehouse,
    warehouse_holder,
    workspace_from_args,
)
from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.spec import Content
from nudge.core.warehouse.connection import WarehouseBusy, connect
from nudge.core.workspace import Workspace
from senders.providers import RenderedMessage
from senders.templates import RenderError

# The To of an email preview for a user without an email address (a real send is undeliverable).
_NO_ADDRESS = "no-address@preview.invalid"
_SHOWN_HEADERS = ("From", "To", "Subject", "List-Unsubscribe", "Message-ID")


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``--event``, ``--data``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, like \'{"plan": "pro"}\'')
    return value


def add_commands(commands: Any) -> None:
    """The ``preview`` and ``send-test`` subcommands (``commands``: argparse's subparsers)."""
    preview = commands.add_parser(
        "preview",
        help="render a template for one user as a real send would, and print it",
        description="Render TEMPLATE with USER's traits from the last run (the warehouse opened "
        "read-only), through the same rendering, layout and checks as a real send.",
    )
    preview.add_argument("template")
    preview.add_argument("--user", required=True, help="the user id whose traits fill it")
    _add_data_arguments(preview)
    preview.add_argument("--html", action="store_true", help="print the email's HTML too")
    preview.add_argument("--json", action="store_true", help="everything as one JSON object")
    preview.set_defaults(func=cmd_preview)
    send_test = commands.add_parser(
        "send-test",
        help="send one [TEST] message of a template to an address, through the channel's provider",
        description="Render TEMPLATE (with USER's traits if given) and send it once to ADDRESS "
        "through the provider configured for its channel; recorded in the delivery ledger with "
        "status test_sent or test_failed, never counted as a journey send.",
    )
    send_test.add_argument("template")
    send_test.add_argument("--to", required=True, help="the address (email, phone, URL...)")
    send_test.add_argument("--user", help="render with this user's traits (default: none)")
    _add_data_arguments(send_test)
    send_test.set_defaults(func=cmd_send_test)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event", type=json_object, help="the triggering event's properties, as a JSON object"
    )
    parser.add_argument(
        "--data", type=json_object, help="traits laid over the user's, as a JSON object"
    )


def _unknown_template(workspace: Workspace, content: Content, name: str) -> int:
    known = sorted(t.name for t in content.templates)
    print(
        f"no template {name!r} in {workspace.content_dir}{did_you_mean(name, known)}; "
        f"templates: {', '.join(known) or 'none'}.",
        file=sys.stderr,
    )
    return 1


def cmd_preview(args: argparse.Namespace) -> int:
    from nudge.core.checked_content import load_workspace_content
    from senders.email import SmtpSettings, build_email
    from senders.one_off import read_recipient, render_one, with_traits

    workspace = workspace_from_args(args, create=False)
    content = load_workspace_content(workspace)
    template = content.template(args.template)
    if template is None:
        return _unknown_template(workspace, content, args.template)
    require_built_warehouse(workspace)
    with connect(workspace.warehouse_path, read_only=True) as con:
        recipient = read_recipient(con, args.user)
    if recipient is None:
        print(
            f"no user {args.user!r} in {workspace.warehouse_path} as of the last run; "
            "`nudge profile USER_ID` shows a user.",
            file=sys.stderr,
        )
        return 1
    address = recipient.address(template.channel)
    try:
        message = render_one(
            content,
            template.name,
            user_id=recipient.user_id,
            traits=with_traits(recipient.traits, args.data),
            event=args.event,
            address=address or (_NO_ADDRESS if template.channel == "email" else ""),
            key_prefix="preview",
        )
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        "template": template.name,
        "channel": template.channel,
        "user_id": recipient.user_id,
        "journey": message.journey or None,
        "step": message.step or None,
        "address": address,
    }
    if template.channel == "email":
        data, _ = build_email(message, SmtpSettings.from_env())
        parsed = message_from_bytes(data, policy=policy.default)
        result["headers"] = {name: str(parsed[name]) for name in _SHOWN_HEADERS if parsed[name]}
        html_part = _part_text(parsed.get_body(("html",)))
        result["content"] = {
            "preheader": message.content.get("preheader"),
            "text": _part_text(parsed.get_body(("plain",))) or "",
            "html": html_part,  # with the preheader in place, as the inbox gets it
        }
        if html_part is not None and not (args.html or args.json):
            path = _write_html(workspace, template.name, recipient.user_id, html_part)
            result["html_file"] = str(path)
    else:
        result["content"] = {k: v for k, v in message.content.items() if k != "unsubscribe_url"}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(_describe(result, message, show_html=args.html))
    return 0


def _part_text(part: MIMEPart | None) -> str | None:
    """A text part's content as written, without the CRLF line ends and the final one MIME adds."""
    if part is None:
        return None
    return str(part.get_content()).replace("\r\n", "\n").removesuffix("\n")


def _write_html(workspace: Workspace, template: str, user_id: str, html: str) -> Path:
    """The HTML part in ``<home>/previews/``, to open in a browser."""
    folder = workspace.home / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{template}.{re.sub(r'[^A-Za-z0-9_.-]', '_', user_id)}.html"
    path.write_text(html, encoding="utf-8")
    return path


def _describe(result: dict[str, Any], message: RenderedMessage, *, show_html: bool) -> str:
    sent_by = (
        f", as journey {message.journey} step {message.step} sends it" if message.journey else ""
    )
    lines = [
        f"template {result['template']} ({result['channel']}) for {result['user_id']}{sent_by}"
    ]
    if result["address"] is None and result["channel"] in ("email", "sms"):
        lines.append(
            f"note: the user has no {result['channel']} address; a real send is undeliverable"
        )
    content = result["content"]
    if result["channel"] != "email":
        for key, value in content.items():
            text = value if isinstance(value, str) else json.dumps(value, indent=2)
            lines.append(f"{key}: {text}")
        return "\n".join(lines)
    lines += [f"{name}: {value}" for name, value in result["headers"].items()]
    if content["preheader"]:
        lines.append(f"Preheader: {content['preheader']}")
    if "html_file" in result:
        lines.append(f"HTML: {result['html_file']}")
    lines += ["", content["text"].rstrip("\n")]
    if show_html and content["html"] is not None:
        lines += ["", "--- html ---", content["html"].rstrip("\n")]
    return "\n".join(lines)


def cmd_send_test(args: argparse.Namespace) -> int:
    from nudge.core.checked_content import load_workspace_content
    from nudge.core.warehouse.schema import ensure_tables
    from senders.addresses import NOT_ONE_ADDRESS, is_bare_mailbox
    from senders.one_off import (
        as_test,
        read_recipient,
        render_one,
        send_test,
        suppressed_reason,
        with_traits,
    )
    from senders.registry import (
        ProviderPlaces,
        choose_provider,
        open_provider,
        provider_names,
        provider_variable,
    )

    workspace = workspace_from_args(args)
    content = load_workspace_content(workspace)
    template = content.template(args.template)
    if template is None:
        return _unknown_template(workspace, content, args.template)
    if template.channel == "email" and not is_bare_mailbox(args.to):
        print(
            f"--to {args.to!r} is {NOT_ONE_ADDRESS}, so nothing was sent: give one address "
            "(name@example.org), without a display name, angle brackets or a list.",
            file=sys.stderr,
        )
        return INVALID_EXIT_STATUS
    # Only this channel's provider must be ready to send (open_provider checks its settings).
    choice = choose_provider(template.channel)
    if choice is None:
        names = " or ".join(provider_names(template.channel))
        print(
            f"no provider is configured for channel {template.channel}, so nothing was sent: "
            f"set {provider_variable(template.channel)} ({names}).",
            file=sys.stderr,
        )
        return INVALID_EXIT_STATUS
    if args.user:
        require_built_warehouse(workspace)
    try:
        with connect(workspace.warehouse_path) as con:
            ensure_tables(con)
            recipient = read_recipient(con, args.user) if args.user else None
            if args.user and recipient is None:
                print(f"no user {args.user!r} in {workspace.warehouse_path}.", file=sys.stderr)
                return 1
            why = suppressed_reason(con, template.channel, args.to)
            if why is not None:
                print(
                    f"{args.to} is suppressed ({why}), so nothing was sent; send the test to "
                    "another address.",
                    file=sys.stderr,
                )
                return 1
            try:
                message = render_one(
                    content,
                    template.name,
                    user_id=recipient.user_id if recipient else "test",
                    traits=with_traits(recipient.traits if recipient else None, args.data),
                    event=args.event,
                    address=args.to,
                    key_prefix="test",
                )
            except RenderError as err:
                print(f"error: {err}; nothing was sent.", file=sys.stderr)
                return 1
            provider = open_provider(choice, ProviderPlaces.of(workspace))
            outcome = send_test(con, provider, as_test(message))
    except WarehouseBusy as busy:
        print(
            f"nothing was sent: {warehouse_holder(busy)}, and a test send is recorded in its "
            "delivery ledger; try again when it has ended.",
            file=sys.stderr,
        )
        return BUSY_EXIT_STATUS
    via = getattr(provider, "label", provider.name)
    if outcome.status != "sent":
        print(f"test send of {template.name} to {args.to} via {via} failed: {outcome.reason}",
              file=sys.stderr)  # fmt: skip
        return 1
    accepted = f" (provider message id {outcome.provider_message_id})"
    print(
        f"sent a test of {template.name} to {args.to} via {via}"
        f"{accepted if outcome.provider_message_id else ''}; ledger status test_sent, "
        f"key {message.idempotency_key}"
    )
    return 0
