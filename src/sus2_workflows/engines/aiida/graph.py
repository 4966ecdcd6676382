"""The provenance graph of a campaign node (``sus2 aiida graph PK``), by AiiDA's own graph tool: a process with
everything it called and created (and the inputs of each), or a data node with everything it derives from."""

from __future__ import annotations

import shutil
from pathlib import Path

from ...errors import Sus2WorkflowError

FORMATS = ("svg", "png", "pdf", "dot")


def write_graph(pk: int, output: str | Path) -> Path:
    """Write the provenance graph of node ``pk`` to ``output`` (.svg, .png or .pdf rendered by Graphviz's ``dot``;
    .dot: the graph's source, no Graphviz needed); returns the file."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.tools.visualization import Graph

    output = Path(output)
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise Sus2WorkflowError(f"{output}: the graph is written as {', '.join('.' + f for f in FORMATS)}")
    if fmt != "dot" and shutil.which("dot") is None:
        raise Sus2WorkflowError(f"{output}: rendering needs Graphviz's `dot` (apt-get install graphviz, or `make "
                                "install` as root); a .dot file needs nothing")
    try:
        node = orm.load_node(pk)
    except NotExistent:
        raise Sus2WorkflowError(f"no AiiDA node with pk {pk} in this profile") from None
    graph = Graph(graph_attr={"rankdir": "LR"})
    if isinstance(node, orm.ProcessNode):
        graph.recurse_descendants(node, include_process_inputs=True, annotate_links="label")
    else:
        graph.recurse_ancestors(node, annotate_links="label")
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        output.write_text(graph.graphviz.source)
    else:
        graph.graphviz.render(outfile=output, format=fmt, cleanup=True)
    return output
