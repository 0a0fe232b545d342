"""Caffe2 predictor files (minidb / lmdb DBs written by predictor_exporter.save_to_db):
load_blobs, read_db, load_predictor, the CLI on them, and hostile files.

The files are written by tests/caffe2_writer.py from the wire format (no Caffe2 needed).
C2_FUZZ_CASES=N runs N mutation-fuzz cases instead of the CI default.
"""
import os
import random
import re
import resource
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("google.protobuf")

from torch_caffe2ops import caffe2 as c2  # noqa: E402
from torch_caffe2ops.caffe2 import NetImportError  # noqa: E402
from torch_caffe2ops.caffe2.db import detect_db_type  # noqa: E402
from torch_caffe2ops.caffe2.proto import DATA_TYPES, BlobProto  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import caffe2_writer as w  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

try:
    import lmdb  # noqa: F401

    HAVE_LMDB = True
except ImportError:
    HAVE_LMDB = False
needs_lmdb = pytest.mark.skipif(not HAVE_LMDB, reason="the lmdb package is not installed (extra: torch_caffe2ops[lmdb])")


def ranking_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    batch = 3
    lengths = torch.randint(0, 4, (batch,), generator=g, dtype=torch.int64).to(torch.int32)
    ids = torch.randint(0, w.EMB_ROWS, (int(lengths.sum()),), generator=g)
    return torch.randn(batch, w.DENSE_DIM, generator=g), ids, lengths


def assert_same_as_load_net(model):
    ref = c2.load_net(w.ranking_predict_net(), w.ranking_init_net())
    assert model.caffe2_inputs == w.RANKING_INPUTS
    assert model.caffe2_outputs == w.RANKING_OUTPUTS
    for seed in range(4):
        args = ranking_inputs(seed)
        torch.testing.assert_close(model(*args), ref(*args), rtol=0, atol=0)


@pytest.fixture
def minidb_path(tmp_path):
    path = tmp_path / "ranker.minidb"
    w.write_minidb(path, w.ranking_records())
    return path


# --------------------------------------------------------------------------------------------
# valid files
# --------------------------------------------------------------------------------------------


def test_minidb_predictor_matches_load_net(minidb_path):
    assert detect_db_type(minidb_path) == "minidb"
    model = c2.load_predictor(minidb_path)
    assert_same_as_load_net(model)
    assert model.caffe2_predictor_file == str(minidb_path)
    # The predict init net's placeholders are the inputs' shape hints.
    assert {k: list(v.shape) for k, v in model.caffe2_input_hints.items()} == {
        b: w.RANKING_SHAPES[b] for b in w.RANKING_INPUTS
    }
    # As load_net: floating parameters are trainable.
    assert sorted(n for n, _ in model.named_parameters()) == sorted(w.ranking_params())


def test_forward_follows_the_metanetdef_input_order(tmp_path):
    inputs = ["lengths", "dense", "ids"]  # not the predict net's operator order
    params = w.ranking_params()
    meta = w.meta_net_def(w.ranking_net(), list(params), inputs, w.RANKING_OUTPUTS, w.RANKING_SHAPES)
    path = tmp_path / "p.minidb"
    w.write_minidb(path, w.predictor_records(meta, params))
    model = c2.load_predictor(path)
    assert model.caffe2_inputs == inputs
    ref = c2.load_net(w.ranking_predict_net(), w.ranking_init_net())
    dense, ids, lengths = ranking_inputs(1)
    torch.testing.assert_close(model(lengths, dense, ids), ref(dense, ids, lengths), rtol=0, atol=0)


@needs_lmdb
@pytest.mark.parametrize("subdir", [True, False])
def test_lmdb_predictor_matches_load_net(tmp_path, subdir):
    path = tmp_path / ("ranker_lmdb" if subdir else "ranker.mdb")
    w.write_lmdb(path, w.ranking_records(), subdir=subdir)
    assert detect_db_type(path) == "lmdb"
    assert_same_as_load_net(c2.load_predictor(path))
    assert_same_as_load_net(c2.load_predictor(path, db_type="lmdb"))


def test_lmdb_missing_names_the_extra(tmp_path, monkeypatch):
    from torch_caffe2ops.caffe2 import _deps

    monkeypatch.setattr(_deps, "_missing", lambda module: module == "lmdb")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"\0" * 64)
    with pytest.raises(ImportError, match=r"torch_caffe2ops\[lmdb\]"):
        c2.load_blobs(tmp_path / "db")


def test_named_predictor(tmp_path):
    path = tmp_path / "p.minidb"
    w.write_minidb(path, w.ranking_records(name="ranker"))
    with pytest.raises(NetImportError, match="PREDICT_NET_TYPE.*PREDICT_NET_TYPE_ranker"):
        c2.load_predictor(path)
    assert_same_as_load_net(c2.load_predictor(path, net_name="ranker"))


@pytest.mark.parametrize("variant", ["load_all", "source_blob_names", "prefixes", "allow_incomplete"])
def test_load_operator_arguments(tmp_path, variant):
    params = w.ranking_params()
    meta = w.meta_net_def(w.ranking_net(), list(params), w.RANKING_INPUTS, w.RANKING_OUTPUTS, w.RANKING_SHAPES)
    load = meta.nets[1].value.op[0]
    assert load.type == "Load"
    stored = dict(params)
    if variant == "load_all":
        load.arg.add(name="load_all", i=1)
    elif variant == "source_blob_names":
        stored = {f"saved/{k}": v for k, v in params.items()}
        load.arg.add(name="source_blob_names").strings.extend(f"saved/{k}".encode() for k in params)
    elif variant == "prefixes":
        stored = {f"trainer_0/{k}": v for k, v in params.items()}
        load.arg.add(name="strip_prefix", s=b"trainer_0/")
        load.arg.add(name="add_prefix", s=b"")
    else:
        load.output.append("not_saved")
        load.arg.add(name="allow_incomplete", i=1)
    path = tmp_path / "p.minidb"
    w.write_minidb(path, w.predictor_records(meta, stored, {"emb": 7}))
    assert_same_as_load_net(c2.load_predictor(path))


def test_global_init_fills_run_as_init_net(tmp_path):
    params = w.ranking_params()
    top_b = params.pop("top_b")
    meta = w.meta_net_def(w.ranking_net(), list(params), w.RANKING_INPUTS, w.RANKING_OUTPUTS, w.RANKING_SHAPES)
    global_init = meta.nets[1].value
    fill = global_init.op.add(type="GivenTensorFill", output=["top_b"])
    fill.arg.add(name="shape", ints=[1])
    fill.arg.add(name="values", floats=top_b.tolist())
    path = tmp_path / "p.minidb"
    w.write_minidb(path, w.predictor_records(meta, params))
    assert_same_as_load_net(c2.load_predictor(path))


# --------------------------------------------------------------------------------------------
# load_blobs / read_db: every encoding Caffe2's serializers use
# --------------------------------------------------------------------------------------------

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.float16]


def sample(dtype, shape=(3, 5), seed=0):
    rs = np.random.RandomState(seed)
    if dtype == np.bool_:
        return rs.rand(*shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rs.randint(max(info.min, -(2**31)), min(info.max, 2**31 - 1), size=shape, dtype=np.int64).astype(dtype)
    return rs.randn(*shape).astype(dtype)


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("chunk", [None, 4])
def test_every_data_type_round_trips(tmp_path, as_bytes, chunk):
    values = {f"b_{np.dtype(d).name}": sample(d) for d in DTYPES}
    records = []
    for name, v in values.items():
        records += w.tensor_records(name, v, chunk, as_bytes=as_bytes)
    random.Random(0).shuffle(records)  # chunk order in the DB does not matter (lmdb sorts "#%10" < "#%2")
    path = tmp_path / "blobs.minidb"
    w.write_minidb(path, records)
    loaded = c2.load_blobs(path)
    assert sorted(loaded) == sorted(values)
    for name, v in values.items():
        expected = torch.from_numpy(v.astype(np.int32)).to(torch.uint16) if v.dtype == np.uint16 else torch.from_numpy(v)
        assert loaded[name].dtype == expected.dtype, name
        assert torch.equal(loaded[name], expected), name


def _blob(name, **tensor):
    blob = BlobProto(name=name, type="Tensor")
    for key, value in tensor.items():
        if key == "segment":
            blob.tensor.segment.begin, blob.tensor.segment.end = value
        elif isinstance(value, (list, tuple)):
            getattr(blob.tensor, key).extend(value)
        else:
            setattr(blob.tensor, key, value)
    return blob.SerializeToString()


def write(tmp_path, records, name="t.minidb"):
    path = tmp_path / name
    w.write_minidb(path, records)
    return path


def test_other_encodings(tmp_path):
    bf16 = torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16)
    records = [
        (b"raw#%0", _blob("raw", dims=[2], data_type=DATA_TYPES["INT64"], raw_data=struct.pack("<2q", 7, -9))),
        (b"bf#%0", _blob("bf", dims=[3], data_type=DATA_TYPES["FLOAT"], data_format=1,
                         raw_data=bf16.view(torch.int16).numpy().tobytes())),
        (b"legacy#%0", _blob("legacy", dims=[3], data_type=DATA_TYPES["BYTE"], byte_data=b"\x01\x02\xff")),
        (b"empty#%0", _blob("empty", dims=[0, 4], data_type=DATA_TYPES["FLOAT"], segment=(0, 0))),
        (b"untyped#%0", _blob("untyped", dims=[0], data_type=DATA_TYPES["UNDEFINED"])),
        (b"words#%0", _blob("words", dims=[2], data_type=DATA_TYPES["STRING"], string_data=[b"a", b"bc"])),
        w.string_record("note", b"hello"),
    ]
    int8 = BlobProto(name="q8", type="Int8TensorCPU")
    int8.qtensor.dims.extend([2, 2])
    int8.qtensor.precision, int8.qtensor.scale, int8.qtensor.bias, int8.qtensor.is_signed = 8, 0.5, 3, False
    int8.qtensor.data_type = DATA_TYPES["UINT8"]
    int8.qtensor.data.extend([0, 1, 254, 255])
    records.append((b"q8", int8.SerializeToString()))
    # QTensor, precision 2, values [3, 0, 1, 2, 3]: bit planes (LSB first), MSB-first bytes.
    q = BlobProto(name="qt", type="QTensor")
    q.qtensor.dims.append(5)
    q.qtensor.precision, q.qtensor.scale, q.qtensor.bias, q.qtensor.is_signed = 2, 0.5, 1.0, False
    q.qtensor.data.extend([0b10101000, 0b10011000])
    records.append((b"qt", q.SerializeToString()))
    path = write(tmp_path, records)
    db = c2.read_db(path)
    assert db.tensors["raw"].tolist() == [7, -9]
    assert db.tensors["bf"].tolist() == [1.5, -2.0, 3.25]
    assert db.tensors["legacy"].tolist() == [1, 2, 255] and db.tensors["legacy"].dtype == torch.uint8
    assert db.tensors["empty"].shape == (0, 4)
    assert db.tensors["untyped"].shape == (0,)
    assert db.string_tensors["words"].values == [b"a", b"bc"] and db.string_tensors["words"].shape == (2,)
    assert db.contents["note"] == b"hello" and db.content_types["note"] == "std::string"
    assert db.tensors["q8"].tolist() == [[0, 1], [254, 255]] and db.tensors["q8"].dtype == torch.uint8
    assert (db.int8_params["q8"].scale, db.int8_params["q8"].zero_point) == (0.5, 3)
    assert db.tensors["qt"].tolist() == [0.5 * (x + 1.0) for x in [3, 0, 1, 2, 3]]
    assert "note" not in c2.load_blobs(path) and "words" not in c2.load_blobs(path)


# --------------------------------------------------------------------------------------------
# broken and hostile files: a NetImportError naming the file and the blob/key
# --------------------------------------------------------------------------------------------


def expect_error(path, pattern, fn=c2.load_blobs):
    with pytest.raises(NetImportError) as info:
        fn(path)
    message = str(info.value)
    assert str(path) in message, message
    assert re.search(pattern, message), message
    return message


def test_truncated_minidb(tmp_path, minidb_path):
    data = minidb_path.read_bytes()
    for cut in (3, 6, 30, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.minidb"
        path.write_bytes(data[:cut])
        expect_error(path, r"record #\d+ at byte \d+.*(truncated|exceed)")


@pytest.mark.parametrize("key_len, value_len, pattern", [
    (-1, 10, "must be positive"),
    (4, 0, "must be positive"),
    (4, -(2**31), "must be positive"),
    (2**31 - 1, 2**31 - 1, "exceed the .* bytes left"),
    (4, 10**9, "exceed the .* bytes left"),
])
def test_bad_record_lengths(tmp_path, minidb_path, key_len, value_len, pattern):
    data = bytearray(minidb_path.read_bytes())
    data[0:8] = struct.pack("<ii", key_len, value_len)
    path = tmp_path / "bad.minidb"
    path.write_bytes(bytes(data))
    expect_error(path, "record #0 at byte 0: .*" + pattern)


@pytest.mark.parametrize("tensor, pattern", [
    (dict(dims=[2**40, 2**40], data_type=1, float_data=[1.0]), r"overflow"),
    (dict(dims=[-3], data_type=1, float_data=[1.0]), r"negative dims"),
    # 10**12 floats (4 TB) asked for, 2 present: refused before any allocation.
    (dict(dims=[10**6, 10**6], data_type=1, float_data=[1.0, 2.0]), r"float_data holds 2 values.*needs 1000000000000"),
    (dict(dims=[2**31, 2**31], data_type=5, byte_data=b"\x01"), r"byte_data holds 1 bytes"),
    (dict(dims=[3], data_type=1, float_data=[1.0, 2.0]), r"float_data holds 2 values.*needs 3"),
    (dict(dims=[2], data_type=10, int64_data=[1, 2, 3]), r"int64_data holds 3 values"),
    (dict(dims=[2], data_type=12, int32_data=[1]), r"int32_data holds 1 values"),
    (dict(dims=[2], data_type=4, string_data=[b"x"]), r"string_data holds 1"),
    (dict(dims=[4], data_type=1, float_data=[1.0] * 4, segment=(2, 9)), r"segment \[2, 9\) outside"),
    (dict(dims=[4], data_type=14, float_data=[1.0] * 4), r"no tensor equivalent"),
    (dict(dims=[2], float_data=[1.0, 2.0]), r"no \(known\) data_type"),
])
def test_hostile_tensor(tmp_path, tensor, pattern):
    path = write(tmp_path, [(b"w#%0", _blob("w", **tensor))])
    start = time.perf_counter()
    message = expect_error(path, pattern)
    assert "blob 'w'" in message
    assert time.perf_counter() - start < 2


def chunked(segments, dims=(10,)):
    return [
        (f"w#%{i}".encode(), _blob("w", dims=list(dims), data_type=1, float_data=[0.0] * (e - b), segment=(b, e)))
        for i, (b, e) in enumerate(segments)
    ]


@pytest.mark.parametrize("segments, pattern", [
    ([(0, 4), (6, 10)], r"elements \[4, 6\) missing"),
    ([(0, 6), (4, 10)], r"overlaps"),
    ([(0, 4), (4, 8)], r"cover 8 of the tensor's 10"),
    ([(0, 10), (10, 10)], r"empty chunk"),
    ([(2, 10)], r"elements \[0, 2\) missing"),
])
def test_bad_chunk_sets(tmp_path, segments, pattern):
    expect_error(write(tmp_path, chunked(segments)), "blob 'w': .*" + pattern)


def test_chunks_disagree_and_duplicates(tmp_path):
    records = chunked([(0, 5), (5, 10)])
    records[1] = (b"w#%1", _blob("w", dims=[11], data_type=1, float_data=[0.0] * 5, segment=(5, 10)))
    expect_error(write(tmp_path, records), r"chunk 'w#%1' has dims \[11\]")
    expect_error(write(tmp_path, chunked([(0, 10)]) * 2, "dup.minidb"), r"key 'w#%0' occurs twice")
    expect_error(write(tmp_path, [w.string_record("s", b"a"), (b"s#%1", BlobProto(type="std::string").SerializeToString())],
                       "dup2.minidb"), r"blob 's': the blob occurs 2 times")


def test_garbage_value(tmp_path):
    expect_error(write(tmp_path, [(b"w#%0", b"\xff\xff\xff")]), r"blob 'w' \(key 'w#%0'\): the value is not a BlobProto")


def test_missing_or_broken_metanetdef(tmp_path):
    path = write(tmp_path, w.tensor_records("fc_w", np.zeros(3, np.float32)))
    expect_error(path, r"no '!!META_NET_DEF' record.*not a predictor file.*'fc_w'", c2.load_predictor)
    path = write(tmp_path, [w.string_record("!!META_NET_DEF", b"\x0a\xff")], "broken.minidb")
    expect_error(path, r"blob '!!META_NET_DEF': not a MetaNetDef", c2.load_predictor)
    meta = w.meta_net_def(w.ranking_net(), ["fc_w"], w.RANKING_INPUTS, w.RANKING_OUTPUTS, w.RANKING_SHAPES)
    path = write(tmp_path, w.predictor_records(meta, {}), "noparams.minidb")
    expect_error(path, r"Load .*blob\(s\) \['fc_w'\] are not in the file", c2.load_predictor)


def test_huge_placeholder_is_refused(tmp_path):
    shapes = dict(w.RANKING_SHAPES, dense=[2**20, 2**20])
    params = w.ranking_params()
    meta = w.meta_net_def(w.ranking_net(), list(params), w.RANKING_INPUTS, w.RANKING_OUTPUTS, shapes)
    path = write(tmp_path, w.predictor_records(meta, params))
    expect_error(path, r"ConstantFill .*predict init net.*refused", c2.load_predictor)


def test_not_a_db(tmp_path):
    expect_error(tmp_path / "absent.minidb", "no such file")
    (tmp_path / "dir").mkdir()
    expect_error(tmp_path / "dir", "without data.mdb")
    with pytest.raises(NetImportError, match="unknown Caffe2 db_type"):
        c2.load_blobs(tmp_path / "dir", db_type="leveldb")
    assert detect_db_type(REPO / "tests" / "fixtures" / "glow_fc_predict_net.pbtxt") is None


# --------------------------------------------------------------------------------------------
# the CLI
# --------------------------------------------------------------------------------------------


def run_cli(capsys, *args):
    from torch_caffe2ops.caffe2.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_inspect_and_convert_a_predictor_file(minidb_path, tmp_path, capsys):
    code, out, err = run_cli(capsys, "inspect", minidb_path)
    assert code == 0, out + err
    assert "predictor file" in out and "the conversion succeeds" in out
    inputs = out.split("inputs (forward arguments, in order):")[1]
    assert inputs.index("dense") < inputs.index("ids") < inputs.index("lengths")
    code, out, err = run_cli(capsys, "inspect", minidb_path, minidb_path)
    assert code == 2 and "give no init net" in err
    pt2 = tmp_path / "model.pt2"
    code, out, err = run_cli(
        capsys, "convert", "--predictor", minidb_path, "-o", pt2,
        "--example-inputs", "float32[3,4]", "int64[6]@0:49", "int32[3]@2:2",
    )
    assert code == 0, out + err
    program = torch.export.load(str(pt2))
    args = (torch.randn(3, 4), torch.randint(0, 50, (6,)), torch.full((3,), 2, dtype=torch.int32))
    torch.testing.assert_close(program.module()(*args), c2.load_predictor(minidb_path)(*args))


def test_cli_broken_predictor_file(tmp_path, minidb_path, capsys):
    path = tmp_path / "cut.minidb"
    path.write_bytes(minidb_path.read_bytes()[:-5])
    code, out, err = run_cli(capsys, "inspect", "--predictor", path)
    assert code == 1 and str(path) in err and "truncated" in err


# --------------------------------------------------------------------------------------------
# mutation fuzzing: only NetImportError (or a successful load), in bounded time and memory
# --------------------------------------------------------------------------------------------


def _record_offsets(data):
    offsets, pos = [], 0
    while pos + 8 <= len(data):
        k, v = struct.unpack_from("<ii", data, pos)
        offsets.append(pos)
        pos += 8 + k + v
    return offsets


def _records(data):
    out, pos = [], 0
    while pos + 8 <= len(data):
        k, v = struct.unpack_from("<ii", data, pos)
        out.append((data[pos + 8:pos + 8 + k], data[pos + 8 + k:pos + 8 + k + v]))
        pos += 8 + k + v
    return out


def mutate(data, rng):
    if rng.random() < 0.5:  # inside one record's value, re-framed: reaches the protobuf and net layers
        records = _records(data)
        i = rng.randrange(len(records))
        key, value = records[i]
        records[i] = (key, mutate_bytes(value, rng) or b"\0")
        return w.minidb_bytes(records)
    return mutate_bytes(data, rng, framing=True)


def mutate_bytes(data, rng, framing=False):
    data = bytearray(data)
    kind = rng.randrange(6 if framing else 5)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del data[rng.randrange(len(data)):]
    elif kind == 2:  # random bytes overwritten
        i = rng.randrange(len(data))
        data[i:i + 8] = bytes(rng.randrange(256) for _ in range(8))
    elif kind == 3:  # bytes inserted or removed
        i = rng.randrange(len(data))
        if rng.random() < 0.5:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        else:
            del data[i:i + rng.randint(1, 4)]
    elif kind == 4:  # a varint byte made large (protobuf lengths, dims, counts)
        i = rng.randrange(len(data))
        data[i] = rng.choice([0x7F, 0xFF, 0x80])
    else:  # a minidb record's length field
        at = rng.choice(_record_offsets(bytes(data))) + 4 * rng.randrange(2)
        value = rng.choice([0, -1, 1, 2**31 - 1, -(2**31), rng.randrange(1, 1 << 20)])
        data[at:at + 4] = struct.pack("<i", value)
    return bytes(data)


def test_mutation_fuzz(tmp_path, minidb_path):
    cases = int(os.environ.get("C2_FUZZ_CASES", "300"))
    rng = random.Random(20240607)
    valid = minidb_path.read_bytes()
    path = tmp_path / "fuzz.minidb"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"ok": 0, "error": 0}
    slowest = 0.0
    for case in range(cases):
        data = mutate(valid, rng)
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            c2.load_predictor(path)
            outcomes["ok"] += 1
        except NetImportError as e:
            assert str(path) in str(e), f"case {case}: {e}"
            outcomes["error"] += 1
        except Exception as e:  # pragma: no cover - the failure being tested for
            (tmp_path / f"crash_{case}.minidb").write_bytes(data)
            raise AssertionError(f"case {case}: {type(e).__name__}: {e} (input kept in {tmp_path})") from e
        slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 10, f"case {case} took {slowest:.1f} s"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 1024, f"peak memory grew by {grown_mb:.0f} MB"
    assert outcomes["error"] > cases // 4, outcomes
