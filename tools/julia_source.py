"""Reading Julia source with tree-sitter-julia: shared by the API-index generator
(``tools/make_julia_api_index.py``) and the static checker (``tools/check_julia_static.py``).

Only syntax is used here: nothing is evaluated, no Julia is needed.
"""

from __future__ import annotations

import re
from functools import lru_cache

MACRO_DEFINERS = ("@rule", "@marginalrule", "@average_energy")


@lru_cache(maxsize=1)
def parser():
    import tree_sitter_julia  # noqa: PLC0415
    from tree_sitter import Language, Parser  # noqa: PLC0415

    return Parser(Language(tree_sitter_julia.language()))


def parse(source: bytes):
    return parser().parse(source)


def text(node) -> str:
    return node.text.decode("utf-8", "replace")


def walk(node):
    """Every node under ``node`` (itself included), in document order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def named_children(node):
    return [c for c in node.children if c.is_named]


def first_identifier(node):
    """The leading identifier of ``x``, ``x::T``, ``x = 1`` (also a named-tuple field), ``x...``,
    ``(x, aliases = ...)``."""
    if node is None:
        return None
    if node.type == "identifier":
        return text(node)
    if node.type in ("typed_expression", "named_argument", "named_field", "assignment", "splat_expression",
                     "tuple_expression", "parenthesized_expression", "optional_parameter"):
        kids = named_children(node)
        return first_identifier(kids[0]) if kids else None
    return None


def macro_name(node) -> str | None:
    """``@name`` of a macrocall_expression (``@A.b`` → ``@b``)."""
    if node.type != "macrocall_expression":
        return None
    mid = node.children[0] if node.children else None
    if mid is None or mid.type != "macro_identifier":
        return None
    return "@" + text(mid).lstrip("@").rsplit(".", 1)[-1]


def macro_arguments(node):
    for c in node.children:
        if c.type == "macro_argument_list":
            return named_children(c)
    return []


def export_names(root) -> list[str]:
    """Names in every ``export`` statement under ``root`` (macros keep their ``@``)."""
    out = []
    for n in walk(root):
        if n.type == "export_statement":
            for c in named_children(n):
                if c.type in ("identifier", "macro_identifier", "operator"):
                    out.append(text(c).replace(" ", ""))
    return out


TYPE_DEFINITIONS = ("struct_definition", "abstract_definition", "primitive_definition")


def type_name(node) -> str | None:
    """The name a struct/abstract/primitive type definition introduces (``Foo`` of ``struct Foo{T} <: Bar``)."""
    head = next((c for c in node.children if c.type == "type_head"), None)
    if head is None:
        return None
    m = re.match(r"\s*([^\s{<]+)", text(head))
    return m.group(1) if m else None


def struct_fields(node) -> tuple[str, list[str]] | None:
    """(name, field names) of a struct_definition."""
    head = next((c for c in node.children if c.type == "type_head"), None)
    if head is None:
        return None
    name_node = named_children(head)[0] if named_children(head) else None
    while name_node is not None and name_node.type in ("binary_expression", "parametrized_type_expression"):
        name_node = named_children(name_node)[0]
    if name_node is None or name_node.type != "identifier":
        return None
    fields = []
    for c in named_children(node):
        if c == head:
            continue
        if c.type == "identifier":
            fields.append(text(c))
        elif c.type == "typed_expression":
            f = first_identifier(c)
            if f:
                fields.append(f)
        elif c.type in ("macrocall_expression",):   # e.g. `@atomic x::Int` / documented fields
            for a in macro_arguments(c):
                f = first_identifier(a)
                if f:
                    fields.append(f)
    return text(name_node), fields


_NODE_HEAD_RE = re.compile(r"@node\s+(\w+)\s+(?:Stochastic|Deterministic)\s*\[")


def split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def node_declarations(source: str) -> dict[str, list[str]]:
    """``@node Name Kind [iface, (iface, aliases = [...]), ...]`` → {Name: [iface, ...]} (comments removed)."""
    clean = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    out = {}
    for m in _NODE_HEAD_RE.finditer(clean):
        depth, i = 1, m.end()
        while i < len(clean) and depth:
            depth += {"[": 1, "]": -1}.get(clean[i], 0)
            i += 1
        ifaces = []
        for part in split_top_level(clean[m.end():i - 1]):
            name = re.match(r"\(?\s*([^\s,()=]+)", part)
            if name:
                ifaces.append(name.group(1))
        out[m.group(1)] = ifaces
    return out
