"""``nudge serve``: the collector under uvicorn."""

from __future__ import annotations

import uvicorn

from collector.app import create_app
from collector.settings import Credentials
from nudge.core.landing.journal import JournalBusy
from nudge.core.workspace import Workspace


def serve(workspace: Workspace, host: str, port: int) -> int:
    """Serve until stopped (SIGINT/SIGTERM publish what is in the journal before exiting)."""
    credentials = Credentials.from_env()
    if not credentials.write_keys and not credentials.track:
        print(
            "warning: neither NUDGE_WRITE_KEYS nor NUDGE_TRACK_CREDENTIALS is set: every request "
            "carrying data will be refused."
        )
    app = create_app(workspace, credentials)
    try:
        recovered = app.state.collector.committer.open()
    except JournalBusy as busy:
        print(f"error: {busy}")
        return 2
    if recovered:
        print(f"published {recovered} messages a stopped collector had acknowledged")
    print(
        f"nudge collector on http://{host}:{port} (landing in {workspace.events_landing_dir})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0
