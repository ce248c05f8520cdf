"""The app's functions as the local host sees them, shared by the HTTP host and the queue runner.

- `index_functions`: the app's function list, built once per FunctionApp;
- `OutValue`: the `func.Out` passed to a function for each output binding;
- `OutputSink`: where a set output value goes after the function returns.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import azure.functions as func
from azure.functions.decorators.core import Binding
from azure.functions.decorators.function_app import Function

from devhost.errors import LocalHostError

OutputSink = Callable[[str, Binding, Any], None]


# get_functions() may run only once per FunctionApp (a second call fails its duplicate-name
# check), so the index is kept per app object and shared by every LocalHost built over it.
_INDEXES: weakref.WeakKeyDictionary[func.FunctionApp, list[Function]] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def index_functions(app: func.FunctionApp) -> list[Function]:
    """The app's functions, built once per app object.

    Code that already called `app.get_functions()` itself must hand its list to
    `LocalHost(app, functions=...)`: a second indexing would fail on duplicate names.
    """
    with _INDEX_LOCK:
        if app not in _INDEXES:
            if app.functions_bindings:
                raise LocalHostError(
                    "this FunctionApp was already indexed with get_functions(); "
                    "pass that list as LocalHost(app, functions=...)"
                )
            _INDEXES[app] = app.get_functions()
        return _INDEXES[app]


class OutValue(func.Out[Any]):
    """The `func.Out` handed to the function for an output binding; remembers if it was set."""

    def __init__(self) -> None:
        self._value: Any = None
        self.is_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.is_set = True

    def get(self) -> Any:
        return self._value
