"""What a converter uses to emit fx nodes: the graph, the target device, naming and constants."""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, Optional, Sequence

import torch
import torch.fx

_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def sanitize(blob: str) -> str:
    """A Python identifier that reads like the Caffe2 blob name (``gpu_0/fc1_w`` -> ``gpu_0_fc1_w``)."""
    name = _IDENT.sub("_", blob).strip("_") or "blob"
    if name[0].isdigit():
        name = "_" + name
    return name


class ConversionContext:
    """Shared state of one conversion. Converters call :meth:`call`, :meth:`unpack`,
    :meth:`call_module` and :meth:`constant`; node names default to the current operator's
    first output blob, so the generated code reads like the net."""

    def __init__(self, graph: torch.fx.Graph, device: torch.device):
        self.graph = graph
        self.device = device
        # attribute name -> tensor / module, attached to the GraphModule at the end
        self.constants: dict[str, torch.Tensor] = {}
        self.modules: dict[str, torch.nn.Module] = {}
        self._attr_names: set[str] = set()
        self.name_hint = "out"
        # Conversion options and shared state a converter may read (load_net's ``dequantize``,
        # the init-net parameters ``init_params`` and the ``trainable`` names among them).
        self.options: dict[str, Any] = {}
        self.output_hints: Sequence[str] = ()

    def fresh_attr(self, blob: str) -> str:
        base = sanitize(blob)
        name, i = base, 1
        while name in self._attr_names:
            name, i = f"{base}_{i}", i + 1
        self._attr_names.add(name)
        return name

    def call(self, target: Callable[..., Any], *args: Any, name: Optional[str] = None, **kwargs: Any) -> torch.fx.Node:
        """A ``call_function`` node (``target`` is a torch function, op overload or a function
        from :mod:`torch_caffe2ops.caffe2.functional`)."""
        return self.graph.create_node("call_function", target, args, kwargs, name=name or self.name_hint)

    def method(self, method: str, *args: Any, name: Optional[str] = None, **kwargs: Any) -> torch.fx.Node:
        """A ``call_method`` node, ``args[0].method(*args[1:], **kwargs)``."""
        return self.graph.create_node("call_method", method, args, kwargs, name=name or self.name_hint)

    def unpack(self, node: torch.fx.Node, count: int, names: Optional[Sequence[str]] = None) -> list[torch.fx.Node]:
        """``count`` getitem nodes over a node that returns a tuple or list, named after the
        operator's output blobs."""
        names = list(names or self.output_hints)
        out = []
        for i in range(count):
            label = sanitize(names[i]) if i < len(names) else f"{node.name}_{i}"
            out.append(self.graph.create_node("call_function", operator.getitem, (node, i), {}, name=label))
        return out

    def call_module(self, module: torch.nn.Module, *args: Any, name: Optional[str] = None) -> torch.fx.Node:
        """A ``call_module`` node running ``module`` (registered as a submodule)."""
        target = self.fresh_attr(name or self.name_hint)
        self.modules[target] = module
        return self.graph.create_node("call_module", target, args, {}, name=target)

    def constant(self, value: torch.Tensor, name: Optional[str] = None) -> torch.fx.Node:
        """A buffer holding ``value`` (moved to the target device), read with ``get_attr``."""
        target = self.fresh_attr(name or self.name_hint)
        self.constants[target] = value.to(self.device)
        return self.graph.create_node("get_attr", target, (), {}, name=target)
