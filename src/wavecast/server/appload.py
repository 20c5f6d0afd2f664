"""The application's hooks by import path: ``wavecast serve --app mymodule:setup``.

As uvicorn imports ``module:app``, the server imports ``module`` (with ``app_dir``, the
current directory by default, first on ``sys.path``), takes its attribute ``setup`` (dotted
names reach inside: ``pkg.hooks:registry.setup``) and calls it once with the
:class:`~wavecast.realtime.node.Node`, before the node starts. ``setup`` registers hooks and
RPC handlers (``@node.rpc("method")``, ``node.on_subscribe = ...``); it may be a coroutine
function. Every failure is an :class:`~wavecast.exceptions.AppLoadError` that names the path
and, when the application's code raised, carries its traceback.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import AppLoadError

if TYPE_CHECKING:
    from ..realtime.node import Node

__all__ = ["Setup", "import_setup", "load_app"]

#: What ``--app`` names: called with the node; a coroutine function is awaited.
Setup = Callable[["Node"], Any]


def import_setup(path: str, app_dir: str = "") -> Setup:
    """Import the setup function that ``path`` (``"module:attribute"``) names, without calling it.

    Args:
        path: the import path, as ``server.app`` holds it.
        app_dir: the directory put first on ``sys.path``; ``""`` is the current directory.

    Raises:
        AppLoadError: the path is malformed, the module can't be imported (its traceback
            included when its own code raised), the attribute is missing, or it isn't a
            function of one argument.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise AppLoadError(path, f'expected "<module>:<attribute>", e.g. "myapp.hooks:setup", got {path!r}')
    directory = os.path.abspath(app_dir or ".")
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The module itself (or its package) isn't there, rather than something it imports.
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(path, f"no module named {exc.name!r} (searched {directory} and sys.path)") from exc
        raise AppLoadError(path, f"importing {module_name!r} failed", _user_traceback(exc)) from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise AppLoadError(path, f"importing {module_name!r} failed", _user_traceback(exc)) from exc
    target: Any = module
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise AppLoadError(path, f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise AppLoadError(path, f"{attribute!r} isn't callable: it is {type(target).__name__} {target!r:.60}")
    try:
        inspect.signature(target).bind(None)
    except TypeError:
        raise AppLoadError(
            path, f"{attribute!r} must take one argument, the node: its signature is {inspect.signature(target)}"
        ) from None
    except ValueError:  # pragma: no cover - builtins without a signature; calling them will tell
        pass
    return target  # type: ignore[no-any-return]


async def load_app(node: Node, path: str, app_dir: str = "") -> None:
    """Import the setup function at ``path`` and call it with ``node``, awaiting it if needed.

    Raises:
        AppLoadError: as :func:`import_setup`, or the setup function raised (with its traceback).
    """
    setup = import_setup(path, app_dir)
    try:
        result = setup(node)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        raise AppLoadError(path, "the setup function failed", _user_traceback(exc)) from exc


def _user_traceback(exc: BaseException) -> str:
    """Format ``exc`` without the frames of the import machinery and of this module."""
    machinery = (__file__, importlib.__file__)
    report = traceback.TracebackException.from_exception(exc)
    report.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in report.stack
            if frame.filename not in machinery and not frame.filename.startswith("<frozen ")
        ]
    )
    return "".join(report.format()).rstrip("\n")
