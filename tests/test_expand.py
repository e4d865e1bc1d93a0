"""${} expansion: exact iPXE order (checked against a literal port of iPXE's loop), bounded cost."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from pyipxe.script.expand import MAX_EXPANSIONS, expand


def ipxe_expand(token: str, lookup: dict[str, str], limit: int = 10_000) -> str:
    """iPXE's algorithm as written: find the first '}' after a '${', pair with the latest '${'."""
    text = token
    for _ in range(limit):
        start = end = -1
        for index in range(len(text)):
            if text.startswith("${", index):
                start = index
            if start >= 0 and text[index] == "}":
                end = index
                break
        if end < 0:
            return text
        name = text[start + 2 : end]
        text = text[:start] + lookup.get(name, "") + text[end + 1 :]
    raise AssertionError("did not terminate")


VALUES = {"a": "A", "i": "0", "net0": "NET", "x": "${a}", "y": "}", "d": "$", "b": "{a}", "": "E", "a b": "sp"}


def test_examples_from_the_reference() -> None:
    values = {"net0/mac": "52:54:00:12:34:56", "i": "0", "x": "a b", "ip": "${x}"}
    assert expand("${net${i}/mac}", values.get) == "52:54:00:12:34:56"
    assert expand("${x}", lambda n: values.get(n, "")) == "a b"
    assert expand("${ip}", lambda n: values.get(n, "")) == "a b"  # substituted values are rescanned
    assert expand("${}", lambda n: "") == ""
    assert expand("a${b", lambda n: "X") == "a${b"
    assert expand("a}b", lambda n: "X") == "a}b"
    assert expand("}${a}", lambda n: "X") == "}X"


def test_dollar_and_brace_joined_across_a_substitution() -> None:
    # "${d}{a}" → "${a}" after the first substitution, which iPXE then expands.
    assert expand("${d}{a}", lambda n: VALUES.get(n, "")) == ipxe_expand("${d}{a}", VALUES) == "A"
    assert expand("$${b}", lambda n: VALUES.get(n, "")) == ipxe_expand("$${b}", VALUES)


@given(st.text(alphabet="${}abixyd ", max_size=40))
@settings(max_examples=2000)
def test_same_result_as_ipxe_loop(token: str) -> None:
    assert expand(token, lambda n: VALUES.get(n, "")) == ipxe_expand(token, VALUES)


@given(st.text(max_size=200))
def test_never_raises(token: str) -> None:
    expand(token, lambda n: n[::-1])


def test_self_reference_is_cut_off() -> None:
    result = expand("${loop}", lambda n: "${loop}x")
    assert result.endswith("x")
    assert result.count("x") <= MAX_EXPANSIONS + 10


def test_megabyte_tokens_stay_fast() -> None:
    started = time.perf_counter()
    assert len(expand("${a}" * 250_000, lambda n: "A")) == 250_000
    assert expand("${" * 500_000 + "}" * 500_000, lambda n: "") == ""
    assert len(expand("x" * 1_000_000, lambda n: "")) == 1_000_000
    # Generous bound: a quadratic algorithm takes minutes here.
    assert time.perf_counter() - started < 30
