"""Helpers shared by every test folder (import as `helpers`; conftest modules share one name)."""
from __future__ import annotations

import json
import pathlib
import uuid

EVENTS = pathlib.Path(__file__).parent / "events"
ROOT = pathlib.Path(__file__).parent.parent
CALLBACK_SECRET = "local-callback-secret-0123456789"


def load_event(name: str):
    """A captured or documented event from tests/events/."""
    path = EVENTS / name
    return json.loads(path.read_text("utf-8")) if path.suffix == ".json" else path.read_bytes()


def unique_bucket(name: str = "intake") -> str:
    return f"{name}{uuid.uuid4().hex[:8]}-1250000000"
