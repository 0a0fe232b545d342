"""Typed wrappers around ``torch.ops.caffe2ops.*``, one per operator, one module per family
(``ops/<family>.py``, as ``csrc/<family>/``); all of them are importable from here.

Each wrapper forwards to the registered operator with the same argument names and Caffe2's
defaults, so it works the same in eager code, under ``torch.jit.script`` (the wrappers are
scriptable and scripted code calls the registered operator directly), ``torch.compile`` and
``torch.export``. In eager mode a wrapper calls the operator at once; when the dispatcher
refuses an argument, the wrapper raises a :class:`TypeError` that names the wrapper and the
argument, worded from the registered schema (``ops/_call.py``).

Conventions shared by every operator:

* **Errors.** Every violated precondition raises :class:`RuntimeError` whose message starts
  with ``caffe2ops::<op>:`` and names the argument and the offending value. Where Caffe2 read
  or wrote out of bounds (unchecked indices, negative lengths), these operators raise instead.
* **Index and length tensors** accept ``torch.int32`` and ``torch.int64``. Negative indices
  never wrap around.
* **Fresh outputs.** Outputs never alias inputs (a one-piece split or a test-mode dropout is
  a copy); the only exceptions are the in-place ``sparse_normalize_`` variants, which return
  ``param`` itself.
* **Gradients.** Differentiable operators have autograd whose backward calls the matching
  ``*_gradient`` operator, also exposed here. Operators without a gradient raise a
  :class:`RuntimeError` when one is requested through them.
"""
import importlib
import inspect

# One module per family, as csrc/<family>/. Every public function of a family module is a
# wrapper, importable from here and documented, listed and scripted as torch_caffe2ops.ops.<name>
# (so adding an op to its family module is all this package needs).
FAMILIES = {name: importlib.import_module(f".{name}", __name__)
            for name in ("batch", "concat_split", "dropout", "sparse_normalize", "margin_rank")}
__all__ = []
for _family in FAMILIES.values():
    for _name, _wrapper in vars(_family).items():
        if inspect.isfunction(_wrapper) and _wrapper.__module__ == _family.__name__ and not _name.startswith("_"):
            _wrapper.__module__ = __name__
            globals()[_name] = _wrapper
            __all__.append(_name)
del _family, _name, _wrapper
