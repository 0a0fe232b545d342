"""Seeded mutation fuzzing of NetDefs: a valid ranking net (predict + init) in binary and text
form is corrupted (bit flips, truncations, inserted bytes, hostile numbers, swapped names,
deleted lines), and every corrupted pair must either load or raise a NetImportError, quickly and
without a crash or a memory blow-up. A net that loads and then fails on its inputs must name the
Caffe2 operator that failed.

    C2_NET_FUZZ_CASES=5000 .venv/bin/python -m pytest tests/test_caffe2_fuzz_nets.py   # a longer run
"""
import os
import random
import re
import time

import pytest
import torch

from torch_caffe2ops import caffe2 as c2
from torch_caffe2ops.caffe2.converters import fill as fill_converters

from test_caffe2_import import ranker_inputs, ranker_nets

CASES = int(os.environ.get("C2_NET_FUZZ_CASES", "240"))
# A corrupted shape may legally ask for a lot; the fuzzer keeps load-time fills small so that a
# run stays in memory (the production limit is tested separately below).
FUZZ_FILL_LIMIT = 1 << 22
SLOW_CASE_S = 10.0
OPERATOR_NAMED = re.compile(r"^\w+ \((predict|init) net operator #\d+")
HOSTILE_INTS = ["-1", "0", "-2147483648", "2147483647", "4611686018427387904", "99999999", "3"]


def _mutate_binary(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[rng.randrange(len(b)):]
    elif kind == 2:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    else:  # a length prefix or varint set to something huge
        i = rng.randrange(len(b))
        b[i:i + 1] = b"\xff\xff\xff\xff\x0f"
    return bytes(b)


def _mutate_text(text: str, rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        numbers = list(re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text))
        if numbers:
            m = rng.choice(numbers)
            return text[: m.start()] + rng.choice(HOSTILE_INTS) + text[m.end():]
    if kind == 1:
        names = list(re.finditer(r'"([^"\n]*)"', text))
        if len(names) > 1:
            a, b = rng.sample(names, 2)
            first, second = sorted((a, b), key=lambda m: m.start())
            return (text[: first.start()] + second.group(0) + text[first.end(): second.start()]
                    + first.group(0) + text[second.end():])
    if kind == 2:
        lines = text.splitlines()
        del lines[rng.randrange(len(lines))]
        return "\n".join(lines)
    if kind == 3:
        i = rng.randrange(len(text))
        return text[:i] + text[i + rng.randint(1, 12):]
    i = rng.randrange(len(text))
    return text[:i] + rng.choice(['"', "{", "}", ":", " arg { name: \"axis\" i: 77 }", "\n"]) + text[i:]


def _check(predict, init, inputs) -> str:
    """'loaded', 'rejected', or 'failed at run time (operator named)'; any other outcome fails."""
    start = time.monotonic()
    try:
        model = c2.load_net(predict, init)
    except c2.NetImportError:
        return "rejected"
    finally:
        assert time.monotonic() - start < SLOW_CASE_S, "a corrupted net took too long to load"
    if model.caffe2_inputs != ["dense", "user_ids", "user_lengths", "item_ids", "item_lengths"]:
        return "loaded"  # another signature: the original inputs do not apply
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as e:  # noqa: BLE001 - any run-time failure must name its operator
        assert OPERATOR_NAMED.match(str(e)), f"a run-time error that names no operator: {type(e).__name__}: {e}"
        return "failed at run time"
    return "loaded"


@pytest.mark.parametrize("form", ["binary", "text"])
def test_corrupted_ranking_nets_load_or_raise_net_import_error(form, monkeypatch) -> None:
    monkeypatch.setattr(fill_converters, "MAX_FILL_ELEMENTS", FUZZ_FILL_LIMIT)
    net, init, _ = ranker_nets(with_cbmmbg=False)
    inputs = ranker_inputs()
    rng = random.Random(f"c2-fuzz-{form}")
    outcomes: dict = {}
    for case in range(CASES // 2):
        target = rng.randrange(2)  # which of the two nets is corrupted
        if form == "binary":
            pair = [net.SerializeToString(), init.SerializeToString()]
            pair[target] = _mutate_binary(pair[target], rng)
        else:
            pair = [c2.to_text(net), c2.to_text(init)]
            pair[target] = _mutate_text(pair[target], rng)
        try:
            outcome = _check(pair[0], pair[1], inputs)
        except AssertionError as e:
            raise AssertionError(f"case {case} ({form}, net {target}): {e}") from None
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The fuzzer must exercise both sides: nets that load and nets that are refused.
    assert outcomes.get("rejected", 0) > 0 and outcomes.get("loaded", 0) + outcomes.get("failed at run time", 0) > 0, outcomes


def test_fill_limit_refuses_huge_shapes_before_allocating() -> None:
    init = c2.NetDef(name="huge")
    op = init.op.add(type="ConstantFill", output=["w"])
    op.arg.add(name="shape").ints.extend([1 << 20, 1 << 20])
    net = c2.NetDef(name="n")
    net.op.add(type="Relu", input=["w"], output=["y"])
    net.external_output.append("y")
    with pytest.raises(c2.NetImportError, match=r"ConstantFill \(init net operator #0.*asks for 1099511627776 elements"):
        c2.load_net(net, init)
