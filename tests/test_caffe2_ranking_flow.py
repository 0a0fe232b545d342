"""The ranking workflow the docs walk through (docs/caffe2_ranking.md): a predictor file whose
embedding table is 8-bit row-wise quantized is opened with dequantize=True, fine-tuned, its
table quantized back into Caffe2's layout, and the model exported with a dynamic batch."""
import numpy as np
import pytest
import torch

from torch_caffe2ops import caffe2 as c2

from caffe2_writer import meta_net_def, predictor_records, write_minidb
from utils import add_op

ROWS, DIM, DENSE = 40, 8, 5


def _quantized_ranker(tmp_path):
    g = torch.Generator().manual_seed(0)
    table = torch.randn(ROWS, DIM, generator=g)
    # PyTorch's own packing writes Caffe2's fused layout: uint8 values, float32 scale and bias.
    packed = torch.ops.quantized.embedding_bag_byte_prepack(table).numpy()
    params = {
        "emb_q": packed,
        "fc_w": (torch.randn(4, DENSE, generator=g) * 0.5).numpy(),
        "fc_b": torch.zeros(4).numpy(),
        "top_w": (torch.randn(1, 4 + DIM, generator=g) * 0.5).numpy(),
        "top_b": torch.zeros(1).numpy(),
    }
    net = c2.NetDef(name="quantized_ranker")
    add_op(net, "FC", ["dense", "fc_w", "fc_b"], ["hidden"])
    add_op(net, "Relu", ["hidden"], ["hidden"])
    add_op(net, "SparseLengthsSumFused8BitRowwise", ["emb_q", "ids", "lengths"], ["pooled"])
    add_op(net, "Concat", ["hidden", "pooled"], ["features", "split_info"], axis=1)
    add_op(net, "FC", ["features", "top_w", "top_b"], ["logit"])
    add_op(net, "Sigmoid", ["logit"], ["prob"])
    inputs, outputs = ["dense", "ids", "lengths"], ["prob"]
    shapes = {"dense": [2, DENSE], "ids": [3], "lengths": [2], "prob": [2, 1]}
    path = tmp_path / "ranker.minidb"
    write_minidb(path, predictor_records(meta_net_def(net, list(params), inputs, outputs, shapes), params))
    return path, packed


def _batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, 4, (n,), generator=g, dtype=torch.int32)
    ids = torch.randint(0, ROWS, (int(lengths.sum()),), generator=g)
    return torch.randn(n, DENSE, generator=g), ids, lengths


def test_predictor_to_fine_tuned_requantized_exported_model(tmp_path) -> None:
    path, packed = _quantized_ranker(tmp_path)
    quantized = c2.load_predictor(path)
    model = c2.load_predictor(path, dequantize=True)
    assert model.caffe2_inputs == ["dense", "ids", "lengths"]
    # the table is now a float parameter holding the dequantized rows
    assert "emb_q" in dict(model.named_parameters())
    dense, ids, lengths = _batch(6, 1)
    # same numbers, up to the order of float rounding in the two lookup kernels
    torch.testing.assert_close(model(dense, ids, lengths), quantized(dense, ids, lengths), rtol=1e-5, atol=1e-6)

    # fine-tune a few steps; only the rows the batches touch move
    touched = set()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(3):
        dense, ids, lengths = _batch(6, 10 + step)
        touched.update(ids.tolist())
        loss = torch.nn.functional.binary_cross_entropy(model(dense, ids, lengths), torch.ones(6, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    tables = c2.quantize_tables(model)
    assert set(tables) == {"emb_q"}
    new = tables["emb_q"]
    assert new.dtype == torch.uint8 and new.shape == packed.shape
    untouched = sorted(set(range(ROWS)) - touched)
    assert untouched, "the batches should leave some rows alone"
    np.testing.assert_array_equal(new.numpy()[untouched], packed[untouched])  # byte for byte
    assert not np.array_equal(new.numpy()[sorted(touched)], packed[sorted(touched)])
    # the re-quantized table is what PyTorch's packing makes of the trained float rows
    trained = model.get_parameter("emb_q").detach()
    expected = torch.ops.quantized.embedding_bag_byte_prepack(trained).numpy()
    np.testing.assert_array_equal(new.numpy()[sorted(touched)], expected[sorted(touched)])

    # export the fine-tuned model with a dynamic batch and a dynamic number of ids
    model.eval()
    example = _batch(4, 20)
    batch, n_ids = torch.export.Dim("batch", min=2), torch.export.Dim("n_ids", min=2)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch}, {0: n_ids}, {0: batch}))
    other = _batch(7, 21)
    if other[1].numel() < 2:
        pytest.skip("the random batch drew fewer than two ids")
    torch.testing.assert_close(program.module()(*other), model(*other))
