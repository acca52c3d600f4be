"""A real uvicorn server on 127.0.0.1 running a myna app in this process (a thread), so tests can look inside it.

Use it where a test must see the service's own state (worker caches, the app object); the other
server tests run `myna serve` as a subprocess (conftest.Server).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from conftest import ADMIN_KEY, free_port


@contextmanager
def serving(app, timeout: float = 60.0) -> Iterator[str]:
    """Serve `app` on a free loopback port with the options `myna serve` uses; yields the base URL."""
    from myna.server.app import server_options

    options = server_options(app.state.service.settings)
    options.update(host="127.0.0.1", port=free_port())
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{options['port']}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def tiny_settings(tiny_set: dict, data_dir, **overrides):
    """Settings of a server on the tiny model set, with the tests' admin key."""
    from myna.config import Settings

    values = {"data_dir": data_dir, "gpt": tiny_set["gpt"], "sovits": tiny_set["sovits"], "hubert": tiny_set["hubert"],
              "bert": tiny_set["bert"], "ref_dirs": (tiny_set["root"],), "admin_key": ADMIN_KEY, "workers": 1}
    return Settings(**{**values, **overrides})
