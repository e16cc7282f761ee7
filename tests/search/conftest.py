"""A tiny pretrained model in a temporary weights cache, for index and server tests."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from faceprint.backbones import create_backbone
from faceprint.models import PretrainedInfo, save_pretrained


@pytest.fixture()
def tiny_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A small_cnn "pretrained" model named ``tiny`` (32 px, 16-d) in a fresh FACEPRINT_HOME."""
    monkeypatch.setenv("FACEPRINT_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    model = create_backbone("small_cnn", embedding_dim=16)
    save_pretrained(model.state_dict(), PretrainedInfo(name="tiny", backbone="small_cnn", embedding_dim=16, image_size=32))
    return "tiny"


@contextlib.contextmanager
def live_server(app):  # type: ignore[no-untyped-def]
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields the port, stops on exit."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
