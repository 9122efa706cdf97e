"""The ``nudge`` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from nudge.core.dsl.problems import DefinitionError
from nudge.core.warehouse.connection import WarehouseBusy
from nudge.core.warehouse.settings import ENGINE_WAREHOUSES, require_engine_warehouse
from nudge.core.workspace import Workspace
from orchestration.earlier_as_of import EarlierThanLastRun
from orchestration.instance import ensure_instance
from orchestration.run_lock import RunInProgress, live_holder
from senders.unsubscribe import MissingLiveSettings

# Exit statuses beyond 0 (done) and 1 (some input rejected, or a read found nothing).
INVALID_EXIT_STATUS = 2  # bad definitions, arguments or settings: fix them first
BUSY_EXIT_STATUS = 3  # a run holds the workspace: try again later
STAGE_FAILED_EXIT_STATUS = 4  # a run started and a stage of it failed
EARLIER_AS_OF_EXIT_STATUS = 5  # --as-of before the last run: refused, nothing ran
EXIT_STATUSES = f"""exit status: 0 done; 1 input rejected or nothing found; {INVALID_EXIT_STATUS} invalid
definitions, arguments or settings; {BUSY_EXIT_STATUS} a run holds the workspace;
{STAGE_FAILED_EXIT_STATUS} a stage of the run failed; {EARLIER_AS_OF_EXIT_STATUS} --as-of is earlier than the last run;
a run stopped by Ctrl-C ends by SIGINT (a shell shows 130), by SIGTERM with 143."""


class NoRunYet(Exception):
    """A read command on a workspace no run has built yet."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(
            f"no run has built the warehouse in {workspace.home} yet: run `nudge run` (or"
            " `nudge demo` for sample data) first."
        )


def require_built_warehouse(workspace: Workspace) -> None:
    """Raise ``NoRunYet`` unless a run has built the marts the read commands read."""
    from nudge.core.warehouse.connection import connect, warehouse_exists

    if warehouse_exists(workspace.warehouse_path):
        with connect(workspace.warehouse_path, read_only=True) as con:
            (built,) = con.execute(
                "select count(*) from information_schema.tables"
                " where table_schema = 'marts' and table_name = 'fct_segment_memberships'"
            ).fetchone()
        if built:
            return
    raise NoRunYet(workspace)


def workspace_from_args(args: argparse.Namespace, *, create: bool = True) -> Workspace:
    """The workspace the arguments and environment name; created unless ``create`` is false
    (read commands: they must not leave an empty workspace behind)."""
    if args.home:
        os.environ["NUDGE_HOME"] = str(Path(args.home).resolve())
    if args.content:
        os.environ["NUDGE_CONTENT"] = str(Path(args.content).resolve())
    workspace = Workspace.from_env()
    if create:
        workspace.ensure()
        ensure_instance(workspace)
    os.environ.update(workspace.env())
    return workspace


def parse_as_of(text: str | None, flag: str = "--as-of") -> datetime:
    """The instant ``text`` names (now when None), as naive UTC; ``ValueError`` saying so when it
    is not an ISO 8601 time."""
    from nudge.core.clock import parse_iso_instant, utc_now

    if text is None:
        return utc_now()
    try:
        return parse_iso_instant(text)
    except ValueError:
        raise ValueError(
            f"{flag}: {text!r} is not an ISO 8601 time (for example 2026-03-01T09:00:00Z)."
        ) from None


# How far ahead of this machine's clock --as-of may be: a clock a little behind another's.
FUTURE_AS_OF_TOLERANCE = timedelta(minutes=5)


def refuse_future_as_of(as_of: datetime) -> None:
    """A run in the future would send what falls due by then before its time, and the
    workspace's history only moves forward: no run at an earlier instant could follow."""
    from nudge.core.clock import utc_now

    now = utc_now()
    if as_of > now + FUTURE_AS_OF_TOLERANCE:
        raise ValueError(
            f"--as-of {as_of.isoformat()}Z is in the future (it is {now:%Y-%m-%dT%H:%M}Z now):"
            " a run then would send messages before their time, and no later run could be"
            " earlier than it. See what it would do with --dry-run."
        )


def cmd_validate(args: argparse.Namespace) -> int:
    from nudge.core.checked_content import load_workspace_content

    workspace = workspace_from_args(args)
    content = load_workspace_content(workspace)
    print(
        f"{workspace.content_dir}: {len(content.segments)} segments, {len(content.journeys)} "
        f"journeys, {len(content.templates)} templates, {len(content.topics)} topics: all valid"
    )
    from nudge.core.segments.data_checks import workspace_data_warnings
    from nudge.core.template_checks import content_template_warnings, workspace_seen_names

    seen = None
    try:
        for warning in workspace_data_warnings(workspace, content):
            print(warning)
        seen = workspace_seen_names(workspace)
    except WarehouseBusy as busy:
        print(
            f"data warnings not checked: {warehouse_holder(busy)}; run validate again when it"
            " has ended.",
            file=sys.stderr,
        )
    for warning in content_template_warnings(content, seen):
        print(warning)
    from senders.registry import unserved_send_warnings

    for warning in unserved_send_warnings(content):
        print(warning)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nudge.core.landing.inputs import input_file, items
    from nudge.core.landing.messages import MESSAGE_LIMITS, InvalidMessage
    from nudge.core.landing.quarantine import keep, quarantine_record
    from nudge.core.landing.suppressions import SuppressionList
    from nudge.core.landing.writer import land_items

    workspace = workspace_from_args(args)
    suppressions = SuppressionList(workspace.suppressions_path)
    status = 0
    paths: list[Path] = []
    for given in map(Path, args.files):
        if given.is_dir():  # every file in it, by name; hidden files are skipped
            found = sorted(p for p in given.iterdir() if p.is_file() and p.name[0] != ".")
            if not found:
                print(f"{given}: no file to ingest in this folder", file=sys.stderr)
                status = 1
            paths += found
        elif given.exists():
            paths.append(given)
        else:
            print(f"{given}: no such file or directory", file=sys.stderr)
            status = 1
    accepted = rejected = suppressed = not_kept = 0
    for path in paths:
        source = input_file(path)
        try:
            progress = tqdm(
                items(source), desc=path.name, unit=" messages", disable=None, file=sys.stderr
            )
            try:
                result = land_items(
                    workspace.events_landing_dir,
                    progress,
                    suppressions=suppressions,
                    max_bytes=MESSAGE_LIMITS[args.api],
                )
            finally:
                progress.close()
        except InvalidMessage as exc:
            print(f"{path}: nothing landed: {exc.reason}", file=sys.stderr)
            status = 1
            continue
        print(
            f"{path}: {result.accepted} accepted, {len(result.rejected)} rejected"
            + (f", {result.suppressed} dropped (suppressed)" if result.suppressed else "")
        )
        for rejection in result.rejected:
            print(f"  {source.position} {rejection.index}: {rejection.reason}", file=sys.stderr)
        records = [
            quarantine_record(str(path), r.index, r.reason, r.given, api=args.api)
            for r in result.rejected
        ]
        if records and keep(workspace.quarantine_dir, records) is None:
            not_kept += len(records)
        accepted += result.accepted
        rejected += len(result.rejected)
        suppressed += result.suppressed
        status = status or (1 if result.rejected else 0)
    if len(paths) > 1:
        print(
            f"{len(paths)} files: {accepted} accepted, {rejected} rejected, "
            f"{suppressed} dropped (suppressed)"
        )
    if rejected > not_kept:
        print("rejected messages are kept: `nudge quarantine list` shows them")
    if not_kept:
        print(
            f"{not_kept} rejected messages not kept: the quarantine is at its cap "
            "(NUDGE_QUARANTINE_MAX_BYTES)"
        )
    return status


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.server import serve
    from collector.settings import port_from_env

    return serve(workspace_from_args(args), args.host, args.port or port_from_env())


def cmd_quarantine(args: argparse.Namespace) -> int:
    from nudge.core.landing.quarantine import drop, entries, not_kept, replay
    from nudge.core.landing.suppressions import SuppressionList

    workspace = workspace_from_args(args)
    if args.action == "list":
        found = 0
        for entry in entries(workspace.quarantine_dir):
            found += 1
            message = json.dumps(entry.message, default=str)
            print(f"{entry.name}  {entry.received_at}  {entry.source}  {entry.reason}")
            print(f"    {message[:200]}{'...' if len(message) > 200 else ''}")
        print(f"{found} quarantined")
        if dropped := not_kept(workspace.quarantine_dir):
            print(
                f"{dropped} more rejected but not kept: the quarantine was at its cap "
                "(NUDGE_QUARANTINE_MAX_BYTES)"
            )
        return 0
    named = set(args.entries)
    done = "replayed" if args.action == "replay" else "dropped"
    unknown = (
        sorted(named - {entry.name for entry in entries(workspace.quarantine_dir)}) if named else []
    )
    if unknown:
        print(
            f"error: no quarantine entry {', '.join(map(repr, unknown))}; nothing was {done}."
            " `nudge quarantine list` shows the entries.",
            file=sys.stderr,
        )
        return INVALID_EXIT_STATUS
    if args.action == "drop":
        if bool(named) == args.all:
            print(
                "error: name the entries to drop (as `nudge quarantine list` shows them), or give"
                " --all to drop every one and the count of those not kept; not both.",
                file=sys.stderr,
            )
            return INVALID_EXIT_STATUS
        removed = drop(workspace.quarantine_dir, named or None)
        print(f"{removed} dropped" + (", and the count of those not kept" if args.all else ""))
        return 0
    result = replay(
        workspace.quarantine_dir,
        workspace.events_landing_dir,
        SuppressionList(workspace.suppressions_path),
        named or None,
    )
    print(
        f"{result.landed} landed, {result.suppressed} dropped (suppressed), "
        f"{result.still_rejected} still rejected (kept in quarantine)"
    )
    return 1 if result.still_rejected else 0


def cmd_run(args: argparse.Namespace) -> int:
    import uuid

    from nudge.core.checked_content import load_workspace_content
    from orchestration.dagster_run import run_through_dagster
    from orchestration.run_lock import hold_run_lock
    from orchestration.run_summary import summarize_run
    from orchestration.stages import refuse_earlier_as_of

    workspace = workspace_from_args(args)
    as_of = parse_as_of(args.as_of)
    if not args.dry_run:
        refuse_future_as_of(as_of)
    # Checked here as well as where the code location loads them: a mistake in the definitions
    # is said at once, before Dagster is imported and a run is started (seconds).
    content = load_workspace_content(workspace)
    if args.dry_run and args.full_refresh:
        raise ValueError("--dry-run and --full-refresh cannot be combined; run one of them.")
    if args.dry_run:
        from orchestration.dry_run import dry_run

        print(dry_run(workspace, content, as_of).render())
        return 0
    from orchestration.resources import check_delivery_settings

    check_delivery_settings()
    run_id = str(uuid.uuid4())
    with hold_run_lock(workspace, run_id):  # before the first line, so a refused run prints none
        refuse_earlier_as_of(workspace, as_of=as_of, run_id=run_id)
        rebuild = " (every dbt model rebuilt from the calls)" if args.full_refresh else ""
        print(
            f"running the pipeline at as_of {as_of.isoformat()}Z in {workspace.home}{rebuild}",
            flush=True,
        )
        outcome = run_through_dagster(
            workspace,
            as_of,
            run_id=run_id,
            progress=lambda line: print(line, flush=True),
            verbose=args.verbose,
            full_refresh=args.full_refresh,
        )
    summary = summarize_run(workspace, run_id)
    summary.notes = outcome.notes
    if outcome.stopped_by is None:
        summary.failed_steps = outcome.failed_steps
    print()
    print(summary.render(workspace))
    if outcome.stopped_by is not None and not outcome.success:
        command = "nudge run --full-refresh" if args.full_refresh else "nudge run"
        print(
            stopped_run_sentence(run_id, outcome.stopped_by, outcome.failed_steps, command),
            file=sys.stderr,
        )
        if outcome.stopped_by == signal.SIGINT:
            end_by_sigint()
        return 128 + outcome.stopped_by
    return 0 if outcome.success else STAGE_FAILED_EXIT_STATUS


def stopped_run_sentence(
    run_id: str, stopped_by: signal.Signals, failed_steps: list[str], command: str
) -> str:
    """What an operator reads after stopping a run: where it stopped and what to do next."""
    how = "Ctrl-C (SIGINT)" if stopped_by == signal.SIGINT else stopped_by.name
    steps = sorted({step.split(":", 1)[0] for step in failed_steps})
    where = f" in {', '.join(steps)}" if steps else ""
    return (
        f"stopped by {how}{where}: run {run_id} is recorded as failed; run `{command}` again to"
        " carry on."
    )


# The message of a KeyboardInterrupt raised after the interruption was reported.
REPORTED_INTERRUPT = "reported"


def end_by_sigint() -> NoReturn:
    """Raise ``KeyboardInterrupt`` out of ``main`` with no traceback printed for it. Python then
    ends the process by SIGINT after its clean-up, as a program that does not catch Ctrl-C ends:
    a shell whose child dies of SIGINT stops its loop or script too (an exit status of 130 would
    not). Only ``KeyboardInterrupt`` itself does that, not a subclass."""
    sys.stdout.flush()
    sys.stderr.flush()
    print_uncaught = sys.excepthook

    def quiet(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if kind is not KeyboardInterrupt:
            print_uncaught(kind, error, trace)

    sys.excepthook = quiet
    raise KeyboardInterrupt(REPORTED_INTERRUPT)


def cmd_segments(args: argparse.Namespace) -> int:
    from nudge.core.reports import segment_sizes

    workspace = workspace_from_args(args, create=False)
    require_built_warehouse(workspace)
    for name, size in segment_sizes(workspace):
        print(f"{name:32} {size:>8}")
    return 0


def cmd_segments_members(args: argparse.Namespace) -> int:
    """``nudge segments members NAME``: one page of a segment's members, by user id."""
    from nudge.core.dsl.problems import did_you_mean
    from nudge.core.reports import segment_members, segment_names

    workspace = workspace_from_args(args, create=False)
    require_built_warehouse(workspace)
    known = segment_names(workspace)
    if args.name not in known:
        print(
            f"no segment {args.name!r} in the last run{did_you_mean(args.name, known)}; "
            "`nudge segments` lists them.",
            file=sys.stderr,
        )
        return 1
    page = segment_members(workspace, args.name, limit=args.limit, offset=args.offset)
    for user_id in page.user_ids:
        print(user_id)
    end = args.offset + len(page.user_ids)
    shown = f"{args.offset + 1}-{end}" if page.user_ids else "none"
    more = f"; next page: --offset {end}" if end < page.total else ""
    print(f"segment {args.name}: members {shown} of {page.total:,}{more}", file=sys.stderr)
    return 0


def cmd_segments_upload(args: argparse.Namespace) -> int:
    from nudge.core.checked_content import sql_segment_names
    from nudge.core.dsl.load import load_content_dir
    from nudge.core.segments.manual import manual_segment_names, upload_manual_segment

    workspace = workspace_from_args(args)
    # Definitions may already use the name (in_segment, triggers) before its first upload.
    manual = manual_segment_names(workspace) | {args.name}
    content = load_content_dir(workspace.content_dir, sql_segments=sql_segment_names() | manual)
    taken = {segment.name for segment in content.segments} | sql_segment_names()
    upload = upload_manual_segment(
        workspace,
        args.name,
        Path(args.file),
        uploaded_at=parse_as_of(args.at, "--at"),
        taken_names=taken,
    )
    print(
        f"manual segment {upload.segment}: {upload.members} members from "
        f"{upload.uploaded_at.isoformat()}Z ({upload.path}); loaded by the next run"
    )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from nudge.core.reports import user_profile

    workspace = workspace_from_args(args, create=False)
    require_built_warehouse(workspace)
    profile = user_profile(workspace, args.user_id)
    if profile is None:
        print(f"no user {args.user_id!r} in {workspace.warehouse_path}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(profile, indent=2, default=str))
    else:
        for section, value in profile.items():
            print(f"{section}:")
            rows = value if isinstance(value, list) else [value]
            for row in rows:
                print(f"  {json.dumps(row, default=str)}")
    return 0


def cmd_journeys_control(args: argparse.Namespace) -> int:
    """``nudge journeys pause|resume NAME``: the state lives in ``nudge.journey_controls``.

    The request is queued on disk first (``nudge.core.warehouse.journey_controls``), then applied at once unless a
    run holds the warehouse; then whatever next opens the warehouse for writing applies it.
    """
    from nudge.core.checked_content import load_workspace_content
    from nudge.core.warehouse.connection import connect
    from nudge.core.warehouse.journey_controls import apply_pending_requests, request_control
    from nudge.core.warehouse.schema import ensure_tables
    from orchestration.stages import utc_now

    workspace = workspace_from_args(args)
    names = sorted(j.name for j in load_workspace_content(workspace).journeys)
    if args.name not in names:
        known = ", ".join(names) or "none"
        print(
            f"no journey {args.name!r} in {workspace.content_dir} (journeys: {known})",
            file=sys.stderr,
        )
        return 1
    paused = args.action == "pause"
    request_control(workspace.control_requests_dir, args.name, paused=paused, at=utc_now())
    try:
        with connect(workspace.warehouse_path) as con:
            ensure_tables(con)
            apply_pending_requests(con, workspace.control_requests_dir)
    except WarehouseBusy as busy:
        print(
            f"journey {args.name}: {args.action} queued, since {warehouse_holder(busy)}; "
            + ("its sending stops at once, and it " if paused else "it ")
            + "is applied by the next stage, command or run that opens the warehouse."
        )
        return 0
    print(f"journey {args.name}: {'paused' if paused else 'resumed'}")
    return 0


def cmd_scenario_run(args: argparse.Namespace) -> int:
    from nudge.core.warehouse.dbt import DbtBuildError
    from nudge.devtools.scenarios.model import load_scenario
    from nudge.devtools.scenarios.runner import run_scenario

    failed = 0
    with tempfile.TemporaryDirectory(prefix="nudge-scenario-") as tmp:
        for number, path in enumerate(args.files):
            scenario = load_scenario(Path(path))
            try:
                result = run_scenario(scenario, Path(tmp) / str(number), warehouse=args.warehouse)
            except DbtBuildError as error:  # a model of the scenario's, or its data, broke it
                print(f"FAIL {path} ({scenario.name}): {error}")
                failed += 1
                continue
            verdict = "PASS" if result.passed else "FAIL"
            print(f"{verdict} {path} ({scenario.name}, {result.runs} runs)")
            for failure in result.failures:
                print(f"  {failure}")
            failed += not result.passed
    print(f"{len(args.files) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from nudge.core.checked_content import load_workspace_content

    workspace = workspace_from_args(args)
    content = load_workspace_content(workspace)
    if args.segment:
        from nudge.core.segments.explain import explain_segment

        print(explain_segment(workspace, content, user_id=args.user, segment=args.segment))
    else:
        from journeys.explain import explain_journey

        print(explain_journey(workspace, content, user_id=args.user, journey=args.journey))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from nudge.devtools.bench.report import results_table
    from nudge.devtools.bench.runner import run_bench
    from nudge.devtools.bench.scales import SCALES

    results = run_bench(
        SCALES[args.scale],
        work_dir=Path(args.work_dir).resolve(),
        results_path=Path(args.results).resolve(),
        progress=lambda line: print(line, flush=True),
        keep=args.keep,
        warehouse=require_engine_warehouse(args.warehouse),
    )
    print(results_table(results))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from nudge.core.dsl.json_schema import content_schema

    print(json.dumps(content_schema(), indent=2))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from nudge.cli.project_init import init_project

    directory = Path(args.directory)
    for path in init_project(directory):
        print(f"created {path}")
    print(f"next: cd {directory} && nudge demo (or nudge validate, then nudge run)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nudge.devtools.demo import DemoPortInUse, holds_data, run_demo

    workspace = workspace_from_args(args)
    if holds_data(workspace) and not args.yes:
        what = (
            f"nudge demo replaces the workspace in {workspace.home} (warehouse, landing area, mail)"
        )
        if not sys.stdin.isatty():
            print(
                f"{what}; nothing was changed. Confirm with `nudge demo --yes`, or point --home at"
                " another folder.",
                file=sys.stderr,
            )
            return 1
        if input(f"{what}. Continue? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing was changed.", file=sys.stderr)
            return 1
    try:
        return run_demo(workspace)
    except DemoPortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        return INVALID_EXIT_STATUS


def positive(text: str) -> int:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# The largest count or offset a warehouse query takes (a signed 64-bit integer).
MAX_COUNT = 2**63 - 1


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT}")
    return value


def port(text: str) -> int:
    value = non_negative(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nudge", description=__doc__)
    parser.add_argument(
        "--home", help="workspace directory (default $NUDGE_HOME or the project's workspace/)"
    )
    parser.add_argument(
        "--content", help="definitions directory (default $NUDGE_CONTENT or the project's content/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser(
        "init", help="create a new project (example content, README, workspace) in DIRECTORY"
    )
    init.add_argument("directory")
    init.set_defaults(func=cmd_init)

    demo = commands.add_parser("demo", help="generate the sample workspace and run it end to end")
    demo.add_argument(
        "--yes", action="store_true", help="replace an existing workspace without asking"
    )
    demo.set_defaults(func=cmd_demo)
    run = commands.add_parser(
        "run",
        help="one pipeline run through Dagster",
        description="One pipeline run: progress per stage, then a summary.",
        epilog=EXIT_STATUSES,
    )
    run.add_argument("--as-of", help="the run's instant (ISO 8601; default now)")
    run.add_argument(
        "--verbose", action="store_true", help="also print Dagster's own log of every step"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be sent and skipped, on a copy of the warehouse; change nothing",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every dbt model from the calls (what a model changed by an upgrade asks"
        " for); the segment membership history and the log of definitions are kept",
    )
    run.set_defaults(func=cmd_run)
    ingest = commands.add_parser(
        "ingest",
        help="land Segment-spec messages from NDJSON, JSON or CSV (identifies) files or folders",
    )
    ingest.add_argument("files", nargs="+")
    ingest.add_argument(
        "--api",
        choices=("segment", "customerio"),
        default="segment",
        help="the API the messages were sent to, whose size limit applies: Segment's 32 KB "
        "(default) or Customer.io's 132 KB",
    )
    ingest.set_defaults(func=cmd_ingest)
    serve = commands.add_parser(
        "serve",
        help="the HTTP collector (Segment and Customer.io Track APIs), see docs/collector.md",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port, help="port (default $NUDGE_COLLECTOR_PORT, else 8000)")
    serve.set_defaults(func=cmd_serve)
    quarantine = commands.add_parser(
        "quarantine", help="rejected input kept with its reason"
    ).add_subparsers(dest="action", required=True)
    quarantine.add_parser("list", help="every quarantined message and why").set_defaults(
        func=cmd_quarantine
    )
    replay = quarantine.add_parser(
        "replay", help="validate quarantined messages again and land those that now pass"
    )
    replay.add_argument("entries", nargs="*", help="entries to replay (default all), as listed")
    replay.set_defaults(func=cmd_quarantine)
    drop = quarantine.add_parser(
        "drop", help="remove quarantined messages (after a look, or a replay elsewhere)"
    )
    drop.add_argument("entries", nargs="*", help="entries to remove, as listed")
    drop.add_argument(
        "--all", action="store_true", help="every entry, and the count of those not kept"
    )
    drop.set_defaults(func=cmd_quarantine)
    commands.add_parser("validate", help="check every definition").set_defaults(func=cmd_validate)
    commands.add_parser(
        "schema",
        help="print the JSON Schema of content files (for editors; docs/schema/ has a copy)",
    ).set_defaults(func=cmd_schema)
    segments = commands.add_parser("segments", help="segment names and sizes")
    segments.set_defaults(func=cmd_segments)
    segment_actions = segments.add_subparsers(dest="action")
    upload = segment_actions.add_parser(
        "upload", help="upload a CSV with a user_id column as the members of a manual segment"
    )
    upload.add_argument("name", help="manual segment name ([a-z][a-z0-9_]*)")
    upload.add_argument("file", help="CSV file with a header line naming a user_id column")
    upload.add_argument("--at", help="when the list takes effect (ISO 8601; default now)")
    upload.set_defaults(func=cmd_segments_upload)
    members = segment_actions.add_parser(
        "members", help="the user ids in a segment as of the last run, a page at a time"
    )
    members.add_argument("name", help="segment name")
    members.add_argument("--limit", type=positive, default=100, help="users per page (100)")
    members.add_argument("--offset", type=non_negative, default=0, help="users to skip (0)")
    members.set_defaults(func=cmd_segments_members)
    profile = commands.add_parser(
        "profile", help="one user's traits, segments, events, journeys, messages"
    )
    profile.add_argument("user_id")
    profile.add_argument("--json", action="store_true")
    profile.set_defaults(func=cmd_profile)
    explain = commands.add_parser(
        "explain", help="why a user is (not) in a segment, or where they are in a journey"
    )
    explain.add_argument("--user", required=True)
    target = explain.add_mutually_exclusive_group(required=True)
    target.add_argument("--segment")
    target.add_argument("--journey")
    explain.set_defaults(func=cmd_explain)
    bench = commands.add_parser(
        "bench", help="time every stage against its floor on generated data (BENCHMARKS.md)"
    )
    bench.add_argument("--scale", choices=("tiny", "small", "medium", "large"), default="small")
    bench.add_argument("--results", default="bench/results.json", help="where to write results")
    bench.add_argument("--work-dir", default="bench/work", help="scratch workspace (removed after)")
    bench.add_argument("--keep", action="store_true", help="keep the scratch workspace")
    bench.add_argument(
        "--warehouse",
        choices=ENGINE_WAREHOUSES,
        help="where the stages run; postgres: a database of its own on the server of "
        "NUDGE_POSTGRES_URL, dropped afterwards (default: NUDGE_WAREHOUSE, else duckdb)",
    )
    bench.set_defaults(func=cmd_bench)
    journeys = commands.add_parser("journeys", help="pause or resume a journey").add_subparsers(
        dest="action", required=True
    )
    for action, text in (
        ("pause", "stop admitting, moving and sending; people keep their place"),
        ("resume", "run the journey again from where people are"),
    ):
        control = journeys.add_parser(action, help=text)
        control.add_argument("name", help="journey name")
        control.set_defaults(func=cmd_journeys_control)
    scenario = commands.add_parser("scenario", help="scenario files").add_subparsers(
        dest="action", required=True
    )
    scenario_run = scenario.add_parser(
        "run", help="run scenario files; exit 1 on any failed expectation"
    )
    scenario_run.add_argument("files", nargs="+")
    scenario_run.add_argument(
        "--warehouse",
        choices=ENGINE_WAREHOUSES,
        default="duckdb",
        help="where each scenario runs; postgres: a database of its own on the server of "
        "NUDGE_POSTGRES_URL, dropped afterwards (default: duckdb)",
    )
    scenario_run.set_defaults(func=cmd_scenario_run)
    from nudge.cli.preview import add_commands

    add_commands(commands)
    return parser


def warehouse_holder(busy: WarehouseBusy) -> str:
    """Which run holds the warehouse and since when, or that another process does."""
    workspace = Workspace.from_env()
    holder = live_holder(workspace)
    if holder is None:
        return str(busy)
    return f"{holder.describe(workspace.home)} and holds the warehouse"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as interrupt:
        if interrupt.args != (REPORTED_INTERRUPT,):
            print("interrupted (Ctrl-C).", file=sys.stderr)
        end_by_sigint()
    except DefinitionError as error:
        print(f"invalid definitions:\n{error}", file=sys.stderr)
        return INVALID_EXIT_STATUS
    except EarlierThanLastRun as error:
        print(f"refused: {error}", file=sys.stderr)
        return EARLIER_AS_OF_EXIT_STATUS
    except NoRunYet as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RunInProgress as error:
        print(f"error: {error}", file=sys.stderr)
        return BUSY_EXIT_STATUS
    except WarehouseBusy as busy:
        print(f"error: {warehouse_holder(busy)}; try again when it has ended.", file=sys.stderr)
        return BUSY_EXIT_STATUS
    except (ValueError, FileNotFoundError, MissingLiveSettings) as error:
        print(f"error: {error}", file=sys.stderr)
        return INVALID_EXIT_STATUS
    except BrokenPipeError:
        # What reads the output went away (`nudge schema | head -1`): say nothing more, and
        # keep Python from failing on the flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        if error.filename is None:
            raise
        print(
            f"error: cannot use {error.filename}: {error.strerror}. Check the path (and"
            " NUDGE_HOME or NUDGE_CONTENT when it comes from them).",
            file=sys.stderr,
        )
        return INVALID_EXIT_STATUS
