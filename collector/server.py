"""``nudge serve``: the collector under uvicorn."""

from __future__ import annotations

import errno
import gc
import socket
import sys

import uvicorn

from collector.app import create_app
from collector.settings import Credentials, Limits
from collector.slow_headers import header_timeout_protocol
from nudge.core.landing.journal import JournalBusy
from nudge.core.workspace import Workspace


def serve(workspace: Workspace, host: str, port: int) -> int:
    """Serve until stopped (SIGINT/SIGTERM publish what is in the journal before exiting)."""
    credentials = Credentials.from_env()
    if not credentials.write_keys and not credentials.track and not credentials.app_keys:
        print(
            "warning: none of NUDGE_WRITE_KEYS, NUDGE_TRACK_CREDENTIALS, NUDGE_APP_API_KEYS is "
            "set: every request carrying data will be refused."
        )
    limits = Limits.from_env()
    app = create_app(workspace, credentials, limits)
    try:
        recovered = app.state.collector.committer.open()
    except JournalBusy as busy:
        print(f"error: {busy}", file=sys.stderr)
        return 2
    if recovered:
        print(f"published {recovered} messages a stopped collector had acknowledged")
    _tune_garbage_collector()
    try:
        listening = _listen(host, port)
    except OSError as exc:
        print(
            f"error: cannot listen on {host}:{port}: {exc.strerror}; {_what_to_change(exc)}",
            file=sys.stderr,
        )
        return 2
    print(
        f"nudge collector on http://{host}:{port} (landing in {workspace.events_landing_dir})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvloop and httptools (uvicorn[standard]) named rather than "auto", which would fall
        # back silently to asyncio's loop and the pure-Python h11 parser, both slower per request;
        # httptools' protocol with a deadline on the headers (collector.slow_headers).
        loop="uvloop",
        http=header_timeout_protocol(limits.header_seconds),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run(sockets=[listening])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so that a port in use is reported before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError:
        listening.close()
        raise
    return listening


def _what_to_change(error: OSError) -> str:
    """What to change when the collector cannot listen: the port when it is taken (or not
    allowed), else the host, which is not an address of this machine."""
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return "choose another --host (an address of this machine: 127.0.0.1, or 0.0.0.0 for all)."
    return "choose another --port."


# Container objects allocated (less those freed) between two collections of the youngest
# generation; Python's default is 700.
YOUNG_COLLECTION_EVERY = 50_000


def _tune_garbage_collector() -> None:
    """Keep the cycle collector off the request path.

    Measured over 500 of the bench's 100-message batches: with Python's defaults the collector
    spent 1.1 s collecting (each of four full collections walked the ~140,000 objects of the
    imported modules; 500 younger ones walked the requests in flight), against 0.07 s with
    this. Objects alive now (modules, the app) are frozen, so later collections skip them;
    young collections run after ``YOUNG_COLLECTION_EVERY`` allocations. Memory is still freed
    at once by reference counting; only cyclic garbage waits a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY)
