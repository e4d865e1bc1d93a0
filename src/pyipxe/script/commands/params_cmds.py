"""params and param: request-parameter lists for HTTP forms and headers (reference §3.4, §4.4).

A URI ending in ``##params`` (or ``##params=<name>``) carries the list; the HTTP driver
turns its form fields into a POST body and its headers into request headers.
"""

from __future__ import annotations

from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.net.transfer import RequestParams
from pyipxe.script.context import Context
from pyipxe.script.options import CommandSpec, Option, Parsed, parse_string
from pyipxe.script.registry import command

# core/parseopt.c (parse_parameters) and core/params.c; sites assumed from the error file numbers
ERR_NO_SUCH_LIST = ErrorSite(ErrorClass.ENOENT, 0x1620)
ERR_BAD_METHOD = ErrorSite(ErrorClass.ENOTSUP, 0x1620)

METHODS = ("HEAD", "GET", "POST", "PUT")

PARAMS_SPEC = CommandSpec(
    options=(Option("name", "n", parse_string), Option("method", "m", parse_string), Option("delete", "d")),
    max_args=0,
)
PARAM_SPEC = CommandSpec(options=(Option("params", "p", parse_string), Option("header", "H")),
                         min_args=1, usage="<key> [<value>]")


@command("params", spec=PARAMS_SPEC)
async def params(ctx: Context, opts: Parsed) -> None:
    name = opts.options["name"] or ""
    method = opts.options["method"]
    if method is not None and method.upper() not in METHODS:
        raise IpxeError(ERR_BAD_METHOD)
    if opts.options["delete"]:
        ctx.request_params.pop(name, None)
        return
    ctx.request_params[name] = RequestParams(name=name, method=method.upper() if method else None)


@command("param", spec=PARAM_SPEC)
async def param(ctx: Context, opts: Parsed) -> None:
    name = opts.options["params"]
    found = ctx.request_params.get(name or "")
    if found is None:
        ctx.console.print(f'"{name if name is not None else "<NULL>"}": no such parameter list')
        raise IpxeError(ERR_NO_SUCH_LIST)
    key, value = opts.args[0], " ".join(opts.args[1:])
    (found.headers if opts.options["header"] else found.fields).append((key, value))
