"""Shared helpers: run a script in-process and capture what the console showed."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import pytest

from pyipxe.console.keys import KeySource, NoKeys, ScriptedKeys
from pyipxe.console.output import Console
from pyipxe.runner import apply_preset, run_top_script
from pyipxe.script.context import Context
from pyipxe.script.interpreter import Interpreter


@dataclass
class Run:
    output: str
    status: int
    context: Context


def run_script(text: str, *, keys: str | None = None, presets: tuple[str, ...] = ("platform=pcbios",)) -> Run:
    stream = io.BytesIO()
    console = Console(stream, tty=False)  # type: ignore[arg-type]
    source: KeySource = ScriptedKeys(keys) if keys is not None else NoKeys()
    context = Context(console=console, keys=source)
    for preset in presets:
        apply_preset(context, preset)
    Interpreter(context)
    status = asyncio.run(run_top_script(context, text, "test"))
    console.close()
    return Run(stream.getvalue().decode("utf-8", "surrogateescape"), status, context)


@pytest.fixture
def ipxe() -> type[Run]:
    return Run
