"""Remove reshapes and transposes that do nothing, and merge chains of reshapes.

The frontend emits a Reshape for every Squeeze, Unsqueeze and Flatten and around RNN outputs;
most cancel out (LSTM ``Y_h`` -> ``Squeeze``), and hardware should not see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpgac.ir import Graph, Node, Op

__all__ = ["SimplifyReshapes"]


@dataclass(frozen=True)
class SimplifyReshapes:
    def run(self, graph: Graph) -> bool:
        changed = False
        for node in list(graph.nodes):
            if node.op in (Op.RESHAPE, Op.TRANSPOSE):
                changed |= self._simplify(graph, node)
        changed |= graph.remove_unused()
        return changed

    def _simplify(self, graph: Graph, node: Node) -> bool:
        changed = False
        producer = node.inputs[0].producer
        if node.op is Op.RESHAPE and producer is not None and producer.op is Op.RESHAPE:
            node.inputs = [producer.inputs[0]]
            changed = True
            if not graph.consumers(producer.output) and not any(v is producer.output for v in graph.outputs):
                graph.remove_node(producer)
        source = node.inputs[0]
        is_identity = (node.op is Op.RESHAPE and node.output.type.shape == source.type.shape) or (
            node.op is Op.TRANSPOSE and tuple(node.attrs["perm"]) == tuple(range(source.type.rank))
        )
        if not is_identity:
            return changed
        out = node.output
        if any(v is out for v in graph.outputs):
            # keep the output's value (its name); let the producer of the source write it instead
            if source.producer is None or any(v is source for v in graph.outputs) or len(graph.consumers(source)) > 1:
                return changed
            source_producer = source.producer
            source_producer.outputs = [out if v is source else v for v in source_producer.outputs]
            out.producer = source_producer
        else:
            graph.replace_all_uses(out, source)
        graph.remove_node(node)
        return True
