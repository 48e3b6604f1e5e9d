"""Architecture diagram generated from a stack's inventory (never drawn by hand).

Each ComponentResource becomes a box holding its children; the resources a component (or the
stack) creates directly are nodes, and many resources of one type under one parent collapse
into one ``Type ×N`` node so the picture stays readable. Output is Graphviz DOT (rendered to SVG
when Debian's ``dot`` binary is installed) or, without ``dot``, Mermaid in Markdown, which
GitHub and MkDocs render themselves. Nothing here touches the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

COLLAPSE_OVER = 3  # more children than this of one type under one parent -> one "×N" node
HIDDEN_PREFIXES = ("pulumi:pulumi:Stack", "pulumi:providers:")
# Settings-like resources that belong to another one (bucket policies, role attachments, route
# associations, generated passwords): one "supporting resources ×N" node per parent.
SUPPORTING = re.compile(
    r"/(rolePolicy|rolePolicyAttachment|routeTableAssociation|bucket[A-Z]\w*|lifecyclePolicy"
    r"|randomPassword):"
)


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    parent: str | None  # name of the enclosing component, None at top level
    component: str | None = None  # for a component: its own name (its children's parent)


def short_type(token: str) -> str:
    """``aws:rds/instance:Instance`` -> ``rds/Instance``; ``kubernetes:apps/v1:Deployment`` ->
    ``Deployment``; ``mlops:index:ModelServing`` -> ``ModelServing``."""
    pkg, _, rest = token.partition(":")
    module, _, name = rest.partition(":")
    if pkg == "kubernetes" or module == "index":
        return name
    return f"{module.split('/')[0]}/{name}"


def _parent_name(parent: str | None) -> str | None:
    """Parent given as a name or as a URN (``urn:pulumi:stack::project::a$b::name``)."""
    if not parent:
        return None
    return parent.rsplit("::", 1)[-1] if parent.startswith("urn:") else parent


def _is_component(resource: dict) -> bool:
    # First-party components use the mlops: package; Helm releases and k8s objects do not.
    return resource["type"].startswith("mlops:")


def nodes(inventory: list[dict]) -> list[Node]:
    """Diagram nodes: components, and the other resources grouped per (parent, type)."""
    visible = [r for r in inventory if not r["type"].startswith(HIDDEN_PREFIXES)]
    components = {r["name"] for r in visible if _is_component(r)}
    out: list[Node] = []
    groups: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    for r in visible:
        parent = _parent_name(r.get("parent"))
        parent = parent if parent in components else None
        if _is_component(r):
            label = f"{r['name']}\n{short_type(r['type'])}"
            out.append(Node(_id("c", r["name"]), label, parent, r["name"]))
        else:
            kind = "supporting" if SUPPORTING.search(r["type"]) else r["type"]
            groups[(parent, kind)].append(r["name"])
    for (parent, token), names in sorted(
        groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
    ):
        kind = short_type(token) if token != "supporting" else "supporting resources"
        if len(names) > COLLAPSE_OVER or token == "supporting":
            out.append(Node(_id("g", f"{parent}-{token}"), f"{kind} ×{len(names)}", parent))
        else:
            out += [Node(_id("r", f"{parent}-{token}-{n}"), f"{n}\n{kind}", parent) for n in names]
    return out


def _id(prefix: str, text: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', text)}"


def _children(all_nodes: list[Node]) -> dict[str | None, list[Node]]:
    by_parent: dict[str | None, list[Node]] = defaultdict(list)
    for node in all_nodes:
        by_parent[node.parent].append(node)
    return by_parent


def to_dot(inventory: list[dict], title: str) -> str:
    """Graphviz DOT: one cluster per component, nested as the components are."""
    all_nodes = nodes(inventory)
    kids = _children(all_nodes)
    lines = [
        "digraph architecture {",
        f'  graph [rankdir=LR, fontname="Helvetica", label="{_esc(title)}", labelloc=t];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica",'
        " fontsize=10];",
    ]

    def emit(parent: str | None, indent: str) -> None:
        for node in kids.get(parent, []):
            if node.component is not None:
                lines.append(f"{indent}subgraph cluster_{node.id} {{")
                lines.append(f'{indent}  label="{_esc(node.label)}"; style="rounded";')
                emit(node.component, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                lines.append(f'{indent}{node.id} [label="{_esc(node.label)}"];')

    emit(None, "  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(inventory: list[dict], title: str) -> str:
    """Mermaid flowchart in a Markdown document (the fallback when ``dot`` is missing)."""
    all_nodes = nodes(inventory)
    kids = _children(all_nodes)
    lines = [f"# Architecture: {title}", "", "```mermaid", "flowchart LR"]

    def emit(parent: str | None, indent: str) -> None:
        for node in kids.get(parent, []):
            label = node.label.replace("\n", "<br/>").replace('"', "'")
            if node.component is not None:
                lines.append(f'{indent}subgraph {node.id}["{label}"]')
                emit(node.component, indent + "  ")
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{node.id}["{label}"]')

    emit(None, "  ")
    lines += ["```", ""]
    return "\n".join(lines)


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write(inventory: list[dict], title: str, out_dir: Path) -> list[Path]:
    """Write ``architecture.dot`` (+ ``.svg`` if ``dot`` exists) or ``architecture.md``.

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    dot_bin = shutil.which("dot")
    if dot_bin is None:
        path = out_dir / "architecture.md"
        path.write_text(to_mermaid(inventory, title))
        return [path]
    source = out_dir / "architecture.dot"
    source.write_text(to_dot(inventory, title))
    svg = out_dir / "architecture.svg"
    subprocess.run([dot_bin, "-Tsvg", str(source), "-o", str(svg)], check=True, timeout=60)
    return [source, svg]
