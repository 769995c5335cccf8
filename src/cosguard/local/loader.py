"""Loads a function's handler the way SCF does: `index.main_handler` from the function's folder,
imported fresh, with the function's environment in place while its module initialises."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import pathlib
import sys
import threading
import uuid
from typing import Callable, Iterator, Mapping, Optional

FUNCTIONS_DIR = pathlib.Path(__file__).resolve().parents[3] / "functions"
_environ_lock = threading.Lock()


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """`os.environ` with `env` applied, restored afterwards (serialised: the environ is global)."""
    with _environ_lock:
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def load_handler(function: str, env: Mapping[str, str], handler: str = "index.main_handler",
                 functions_dir: Optional[pathlib.Path] = None) -> Callable:
    """The handler callable of `functions/<function>/`, its module initialised under `env`."""
    folder = (functions_dir or FUNCTIONS_DIR) / function
    module_name, _, attribute = handler.rpartition(".")
    path = folder / f"{module_name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}")
    spec = importlib.util.spec_from_file_location(f"scf_{function}_{uuid.uuid4().hex[:8]}", path)
    assert spec is not None and spec.loader is not None   # a .py file's, with a source loader
    module = importlib.util.module_from_spec(spec)
    with patched_environ(env):
        sys.path.insert(0, str(folder))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(folder))
    return getattr(module, attribute)
