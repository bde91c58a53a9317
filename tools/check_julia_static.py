#!/usr/bin/env python
"""Static checks of julia/ against the pinned packages' API, without Julia.

Works from tools/julia_api_index.json (written by tools/make_julia_api_index.py from the packages'
sources at the pinned versions) and tree-sitter-julia. Reports, one line ``path:line: problem`` each:

1. ``undefined``: a name that is not defined in the unit (the package's ``src/``, or one other
   file), not imported by name and not exported by a package the unit uses (at the pinned
   version, ``@reexport`` followed), nor by Base/Core; and ``Pkg.name`` where ``Pkg`` (an indexed
   package or the local module) has no such name;
2. ``rule``: an ``@rule`` / ``@marginalrule`` / ``@average_energy`` / ``@call_rule`` whose node has no
   such interface, or whose argument (``m_x``, ``q_x_y``, ``meta``) names no interface of the node;
3. ``keyword``: an ``infer(...)`` keyword that RxInfer's ``infer`` does not take, or a
   ``where { key = ... }`` key that neither GraphPPL nor RxInfer reads;
4. ``world-age``: in a function that runs ``include_string`` / ``eval``, a later call of something
   that came out of the evaluation (or that takes it as an argument) not made through
   ``invokelatest``;
5. ``half-edge``: a ``~`` variable of an ``@model`` whose last element is used by no other node
   for every input, e.g. used only through a data-dependent index such as ``z[goal_steps[k]]``;
   and a ``@call_rule`` / ``@call_marginalrule`` of a node whose rules are defined in julia/ whose
   ``m_`` and ``q_`` arguments (names and order: ReactiveMP dispatches on both) match no such rule;
6. ``field``: ``x.f`` where ``x`` is a parameter annotated with a struct type that has no field ``f``;
7. ``bridge``: a ``call("py_name", ...)`` in the Python package (``pyrxaif.engines.julia_runtime.call``
   runs ``PyRxAIF.py_name(args...)``) whose function the package's ``src/`` does not define, or
   whose number of positional arguments no method of it takes (reported at the Python call).

What it cannot see: anything that happens at run time (dispatch, types of unannotated values,
numerical results); names are resolved per unit, not per scope, so a misspelled *local* name that
is also defined elsewhere in the unit is not reported.

Usage: python tools/check_julia_static.py [JULIA_DIR [PYTHON_DIR]]   (defaults: julia/, pyrxaif/).
Exit status 0 when clean, 1 with findings, 2 when it cannot run (a folder missing, no Julia parser installed).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import julia_source as js  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INDEX_PATH = ROOT / "tools" / "julia_api_index.json"
PYTHON_DIR = ROOT / "pyrxaif"
# pyrxaif.engines.julia_runtime.call(function, *args) runs PyRxAIF.<function>(args...)
BRIDGE_CALLEE = "call"
BRIDGE_FUNCTION_RE = re.compile(r"^py_[A-Za-z0-9_]+$")
UNQUALIFIED_CHECK_SKIP = {"Base", "Core", "Meta", "Main", "Iterators", "Broadcast", "Threads", "Sys", "GC"}
EVAL_CALLEES = {"include_string", "Base.include_string", "eval", "Core.eval", "Base.eval", "@eval"}
INVOKELATEST = {"invokelatest", "Base.invokelatest", "@invokelatest"}
# Calls that are world-age safe whatever their arguments: the evaluation itself and Base's own plumbing.
SAFE_AFTER_EVAL = {"Meta.parse", "isempty", "isnothing", "throw", "string", "Symbol", "length", "split",
                   "ArgumentError", "Module", "gensym", "pairs", "collect", "Dict", "NamedTuple", "Tuple"}


class Finding(NamedTuple):
    path: str
    line: int
    kind: str
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


def load_index(path: Path = INDEX_PATH) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------------
# binding patterns and definitions
# ------------------------------------------------------------------------------------------------
def pattern_names(node) -> list[str]:
    """Names bound by a binding pattern: ``x``, ``x::T``, ``(a, b)``, ``x = default``, ``xs...``."""
    if node is None:
        return []
    t = node.type
    if t == "identifier":
        return [js.text(node)]
    if t in ("typed_expression", "named_argument", "optional_parameter", "splat_expression"):
        kids = js.named_children(node)
        if t == "typed_expression" and node.children and node.children[0].type == "::":
            return []
        return pattern_names(kids[0]) if kids else []
    if t in ("tuple_expression", "parenthesized_expression", "open_tuple", "argument_list", "bare_tuple"):
        return [n for c in js.named_children(node) for n in pattern_names(c)]
    if t == "assignment":   # keyword default inside a parameter list / let binding
        return pattern_names(js.named_children(node)[0])
    return []


def strip_signature(node):
    """The call_expression of ``f(x)::T where T`` (or None)."""
    while node is not None and node.type in ("where_expression", "typed_expression"):
        kids = js.named_children(node)
        node = kids[0] if kids else None
    return node if node is not None and node.type == "call_expression" else None


def where_names(node) -> list[str]:
    out = []
    for n in js.walk(node):
        if n.type == "where_expression":
            kids = js.named_children(n)
            for k in kids[1:]:
                items = js.named_children(k) if k.type == "curly_expression" else [k]
                for it in items:
                    while it is not None and it.type in ("binary_expression", "subtype_clause"):
                        it = js.named_children(it)[0]
                    if it is not None and it.type == "identifier":
                        out.append(js.text(it))
    return out


def signature_call(fn_node):
    """For function_definition / macro_definition / short definition: the call_expression."""
    if fn_node.type in ("function_definition", "macro_definition"):
        sig = next((c for c in fn_node.children if c.type == "signature"), None)
        kids = js.named_children(sig) if sig is not None else []
        return strip_signature(kids[0]) if kids else None, sig
    if fn_node.type == "assignment":
        lhs = js.named_children(fn_node)[0]
        return strip_signature(lhs), lhs
    return None, None


def call_parts(call):
    """(callee node, argument_list node) of a call_expression."""
    kids = js.named_children(call)
    callee = kids[0] if kids else None
    args = next((c for c in call.children if c.type == "argument_list"), None)
    return callee, args


def parameters(call) -> list:
    """Parameter nodes of a signature call (positional and keyword)."""
    _, args = call_parts(call)
    return js.named_children(args) if args is not None else []


def is_short_definition(node) -> bool:
    return node.type == "assignment" and strip_signature(js.named_children(node)[0]) is not None


def collect_definitions(root) -> set[str]:
    defs = set()
    for n in js.walk(root):
        t = n.type
        if t in ("function_definition", "macro_definition") or is_short_definition(n):
            call, sig = signature_call(n)
            if call is not None:
                callee, _ = call_parts(call)
                if callee is not None and callee.type == "identifier":
                    defs.add(("@" if t == "macro_definition" else "") + js.text(callee))
                elif callee is not None and callee.type == "parametrized_type_expression":
                    defs.add(js.text(js.named_children(callee)[0]))
                for p in parameters(call):
                    defs.update(pattern_names(p))
            if sig is not None:
                defs.update(where_names(sig))
        elif t == "assignment":
            defs.update(pattern_names(js.named_children(n)[0]))
        elif t == "compound_assignment_expression" and any(js.text(c) == "~" for c in n.children):
            lhs = js.named_children(n)[0]
            while lhs.type == "index_expression":
                lhs = js.named_children(lhs)[0]
            defs.update(pattern_names(lhs))
        elif t == "arrow_function_expression":
            defs.update(pattern_names(js.named_children(n)[0]))
        elif t in ("for_binding", "let_binding"):
            defs.update(pattern_names(js.named_children(n)[0]))
        elif t == "do_clause":
            for c in js.named_children(n):
                if c.type in ("do_parameter_list", "argument_list", "tuple_expression", "identifier"):
                    defs.update(pattern_names(c))
                    if c.type == "do_parameter_list":
                        for cc in js.named_children(c):
                            defs.update(pattern_names(cc))
        elif t in js.TYPE_DEFINITIONS:
            head = next((c for c in n.children if c.type == "type_head"), None)
            if head is not None:
                if js.type_name(n):
                    defs.add(js.type_name(n))
                for c in js.walk(head):
                    if c.type == "curly_expression":
                        for it in js.named_children(c):
                            while it.type in ("binary_expression",):
                                it = js.named_children(it)[0]
                            if it.type == "identifier":
                                defs.add(js.text(it))
        elif t == "module_definition":
            defs.add(js.text(js.named_children(n)[0]))
        elif t == "catch_clause":
            kids = js.named_children(n)
            if kids and kids[0].type == "identifier":
                defs.add(js.text(kids[0]))
        elif t in ("local_statement", "global_statement", "const_statement"):
            for c in js.named_children(n):
                defs.update(pattern_names(c))
    return defs


# ------------------------------------------------------------------------------------------------
# imports
# ------------------------------------------------------------------------------------------------
_STMT_RE = re.compile(r"^(using|import)\s+(.*)$", re.S)


@dataclass
class Imports:
    modules: list[str] = field(default_factory=list)        # `using X` (exports visible)
    names: dict[str, int] = field(default_factory=dict)     # explicitly imported names → line
    selected: list[tuple[str, str, int]] = field(default_factory=list)   # (module, name, line)
    aliases: dict[str, str] = field(default_factory=dict)   # const P = PyRxAIF


def collect_imports(root) -> Imports:
    imp = Imports()
    for n in js.walk(root):
        if n.type in ("using_statement", "import_statement"):
            m = _STMT_RE.match(" ".join(js.text(n).split()))
            if not m:
                continue
            kind, rest = m.groups()
            line = n.start_point[0] + 1
            if ":" in rest and not rest.lstrip().startswith(":"):
                mod, names = rest.split(":", 1)
                mod = mod.strip().lstrip(".")
                imp.names[mod.rsplit(".", 1)[-1]] = line
                for name in js.split_top_level(names):
                    name = name.split(" as ")[-1].strip()
                    imp.names[name] = line
                    imp.selected.append((mod, name, line))
            else:
                for mod in js.split_top_level(rest):
                    mod = mod.strip().lstrip(".")
                    imp.names[mod.rsplit(".", 1)[-1]] = line
                    if kind == "using":
                        imp.modules.append(mod)
        elif n.type == "const_statement":
            a = js.named_children(n)[0] if js.named_children(n) else None
            if a is not None and a.type == "assignment":
                lhs, rhs = js.named_children(a)[0], js.named_children(a)[-1]
                if lhs.type == "identifier" and rhs.type == "identifier":
                    imp.aliases[js.text(lhs)] = js.text(rhs)
    return imp


def module_exports(index: dict, module: str, local_exports: dict[str, set], seen=None) -> set[str] | None:
    """Names visible after ``using module`` (None when the module is not in the index)."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    if module in local_exports:
        return set(local_exports[module]) | {module}
    pkgs = index["packages"]
    if module in pkgs:
        out = set(pkgs[module]["exports"]) | {module}
        for r in pkgs[module]["reexports"]:
            out |= module_exports(index, r, local_exports, seen) or {r}
        return out
    if module in index["stdlib_exports"]:
        return set(index["stdlib_exports"][module]) | {module}
    return None


def module_names(index: dict, module: str, local_defs: dict[str, set]) -> set[str] | None:
    """Every name ``module.name`` may refer to (None when unknown)."""
    if module in local_defs:
        return local_defs[module]
    pkgs = index["packages"]
    if module in pkgs:
        out = set(pkgs[module]["defined"])
        for r in pkgs[module]["reexports"]:
            out |= module_names(index, r, local_defs) or set()
        return out
    return None


# ------------------------------------------------------------------------------------------------
# the checks
# ------------------------------------------------------------------------------------------------
@dataclass
class Unit:
    name: str
    files: list[tuple[str, bytes, object]]   # (display path, source, tree)


def line_of(node) -> int:
    return node.start_point[0] + 1


def ancestors(node):
    p = node.parent
    while p is not None:
        yield p
        p = p.parent


def _in_where_block_key(node) -> bool:
    """``key`` of ``where { key = value }``."""
    p = node.parent
    if p is None or p.type != "assignment" or js.named_children(p)[0] != node:
        return False
    c = p.parent
    return c is not None and c.type == "curly_expression" and c.parent is not None and c.parent.type == "where_expression"


def _is_struct_field(node) -> bool:
    p = node.parent
    if p is not None and p.type == "struct_definition":
        return True
    return (p is not None and p.type == "typed_expression" and js.named_children(p)[0] == node
            and p.parent is not None and p.parent.type == "struct_definition")


def is_reference(node) -> bool:
    p = node.parent
    if p is None:
        return True
    if p.type == "field_expression" and js.named_children(p)[0] != node:
        return False
    if p.type in ("quote_expression", "macro_identifier", "module_definition"):
        return False
    if p.type in ("named_argument", "named_field") and js.named_children(p)[0] == node:
        return False
    if _in_where_block_key(node) or _is_struct_field(node):
        return False
    return not any(a.type in ("using_statement", "import_statement", "export_statement", "selected_import")
                   for a in ancestors(node))


def check_names(unit: Unit, index: dict, local_exports, local_defs, defs, imp) -> list[Finding]:
    known = set(defs) | set(imp.names) | set(index["core_names"]) | set(index["base_exports"])
    unknown_modules = []
    for mod in imp.modules:
        ex = module_exports(index, mod, local_exports)
        if ex is None:
            unknown_modules.append(mod)
        else:
            known |= ex
    used = ", ".join(dict.fromkeys(imp.modules)) or "no package"
    note = f" (not in the index: {', '.join(unknown_modules)})" if unknown_modules else ""
    out = []
    for path, _, tree in unit.files:
        reported = set()
        for n in js.walk(tree.root_node):
            if n.type == "identifier" and is_reference(n):
                name = js.text(n)
                if name not in known and name not in ("end", "begin") and (name, line_of(n)) not in reported:
                    reported.add((name, line_of(n)))
                    out.append(Finding(path, line_of(n), "undefined",
                                       f"`{name}` is not defined here, not imported by name and not exported "
                                       f"by {used} at the pinned versions{note}"))
            elif n.type == "macrocall_expression":
                name = js.macro_name(n)
                mid = n.children[0]
                if name and "." not in js.text(mid) and name not in known:
                    out.append(Finding(path, line_of(n), "undefined",
                                       f"macro `{name}` is not defined here, not imported by name and not exported "
                                       f"by {used} at the pinned versions{note}"))
            elif n.type == "field_expression":
                kids = js.named_children(n)
                if len(kids) == 2 and kids[0].type == "identifier" and kids[1].type == "identifier":
                    mod = imp.aliases.get(js.text(kids[0]), js.text(kids[0]))
                    if mod in UNQUALIFIED_CHECK_SKIP or (mod not in index["packages"] and mod not in local_defs):
                        continue
                    if mod not in imp.names and js.text(kids[0]) not in imp.aliases:
                        continue
                    names = module_names(index, mod, local_defs)
                    if names is not None and js.text(kids[1]) not in names:
                        out.append(Finding(path, line_of(n), "undefined",
                                           f"`{mod}.{js.text(kids[1])}`: {mod} defines no `{js.text(kids[1])}`"))
    for mod, name, line in imp.selected:
        names = module_names(index, mod, local_defs)
        if names is not None and name not in names and name.lstrip("@") not in names:
            path = next((p for p, src, _ in unit.files if f"{mod}" in src.decode("utf-8", "replace")), unit.name)
            out.append(Finding(path, line, "undefined", f"`import {mod}: {name}`: {mod} defines no `{name}`"))
    return out


def segment(name: str, parts: set[str]) -> bool:
    """True when ``name`` is interface names joined by ``_`` (``y_x_u`` for interfaces y, x, u)."""
    if name in parts:
        return True
    return any(name.startswith(p + "_") and segment(name[len(p) + 1:], parts) for p in parts)


def rule_node_and_target(args):
    """(node name, target interface or None, argument tuple node or None) of a rule macro call."""
    if not args:
        return None, None, None
    head, target = args[0], None
    node_name = None
    if head.type == "call_expression":
        callee, alist = call_parts(head)
        node_name = js.text(callee) if callee is not None else None
        first = js.named_children(alist)[0] if alist is not None and js.named_children(alist) else None
        if first is not None and first.type == "quote_expression":
            target = js.text(first).lstrip(":")
    elif head.type == "identifier":
        node_name = js.text(head)
    tup = None
    if len(args) > 1:
        a = args[1]
        tup = js.named_children(a)[0] if a.type == "assignment" else a
    return node_name, target, tup


def check_rules(unit: Unit, nodes: dict[str, list[str]]) -> list[Finding]:
    out = []
    for path, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            mname = js.macro_name(n)
            if mname not in ("@rule", "@marginalrule", "@average_energy", "@call_rule", "@call_marginalrule"):
                continue
            node_name, target, tup = rule_node_and_target(js.macro_arguments(n))
            if node_name not in nodes:
                continue
            ifaces = set(nodes[node_name])
            if target is not None:
                ok = segment(target, ifaces) if "marginal" in mname else target in ifaces
                if not ok:
                    out.append(Finding(path, line_of(n), "rule",
                                       f"{mname} {node_name}(:{target}): {node_name} has no interface "
                                       f"{'cluster ' if 'marginal' in mname else ''}`{target}` "
                                       f"(interfaces: {', '.join(nodes[node_name])})"))
            if tup is None or tup.type not in ("tuple_expression", "parenthesized_expression"):
                continue
            for a in js.named_children(tup):
                arg = js.first_identifier(a)
                if arg is None or arg == "meta":
                    continue
                m = re.match(r"^(m|q)_(.+)$", arg)
                if not m or not segment(m.group(2), ifaces) or (m.group(1) == "m" and m.group(2) not in ifaces):
                    out.append(Finding(path, line_of(a), "rule",
                                       f"{mname} {node_name}: argument `{arg}` names no interface of {node_name} "
                                       f"(interfaces: {', '.join(nodes[node_name])}; expected m_<iface>, "
                                       f"q_<iface>[_<iface>...] or meta)"))
    return out


RULE_CALLS = {"@call_rule": "@rule", "@call_marginalrule": "@marginalrule"}


def rule_arguments(tup) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(message names, marginal names), in order, of a rule's or rule call's argument tuple."""
    ms, qs = [], []
    for a in js.named_children(tup) if tup is not None else []:
        arg = js.first_identifier(a)
        m = re.match(r"^(m|q)_(.+)$", arg or "")
        if m:
            (ms if m.group(1) == "m" else qs).append(m.group(2))
    return tuple(ms), tuple(qs)


def _arguments_text(arguments: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    messages, marginals = arguments
    return ", ".join([f"m_{x}" for x in messages] + [f"q_{x}" for x in marginals])


def local_rule_signatures(units: list[Unit]) -> dict[tuple[str, str, str], list]:
    """(macro, node, target) → the (messages, marginals) name tuples of the rules defined in ``units``."""
    out: dict[tuple[str, str, str], list] = {}
    for u in units:
        for _, _, tree in u.files:
            for n in js.walk(tree.root_node):
                mname = js.macro_name(n)
                if mname in RULE_CALLS.values():
                    node_name, target, tup = rule_node_and_target(js.macro_arguments(n))
                    if node_name is not None and target is not None:
                        out.setdefault((mname, node_name, target), []).append(rule_arguments(tup))
    return out


def check_rule_calls(unit: Unit, signatures: dict) -> list[Finding]:
    """``@call_rule`` of a node whose rules are defined locally: the arguments name one of them."""
    defined_nodes = {node for _, node, _ in signatures}
    out = []
    for path, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            mname = js.macro_name(n)
            if mname not in RULE_CALLS:
                continue
            node_name, target, tup = rule_node_and_target(js.macro_arguments(n))
            if node_name not in defined_nodes or target is None or tup is None:
                continue
            given = rule_arguments(tup)
            known = signatures.get((RULE_CALLS[mname], node_name, target), [])
            if given not in known:
                out.append(Finding(path, line_of(n), "rule",
                                   f"{mname} {node_name}(:{target}) with ({_arguments_text(given)}): no "
                                   f"{RULE_CALLS[mname]} {node_name}(:{target}) takes these arguments in this "
                                   f"order (defined: {'; '.join(f'({_arguments_text(s)})' for s in known) or 'none'})"))
    return out


def check_keywords(unit: Unit, index: dict) -> list[Finding]:
    out = []
    infer_kw, where_kw = set(index["infer_keywords"]), set(index["where_keys"])
    for path, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            if n.type == "call_expression":
                callee, alist = call_parts(n)
                if callee is None or alist is None:
                    continue
                cname = js.text(callee)
                args = js.named_children(alist)
                through = cname in INVOKELATEST and args and js.text(args[0]) in ("infer", "RxInfer.infer")
                if cname not in ("infer", "RxInfer.infer") and not through:
                    continue
                for a in args:
                    if a.type == "named_argument":
                        key = js.text(js.named_children(a)[0])
                        if key not in infer_kw:
                            out.append(Finding(path, line_of(a), "keyword",
                                               f"infer(...; {key} = ...): RxInfer's infer takes no keyword `{key}`"))
            elif n.type == "where_expression" and any(a.type == "compound_assignment_expression" for a in ancestors(n)):
                kids = js.named_children(n)
                for c in kids[1:]:
                    if c.type != "curly_expression":
                        continue
                    for a in js.named_children(c):
                        if a.type == "assignment":
                            key = js.text(js.named_children(a)[0])
                            if key not in where_kw:
                                out.append(Finding(path, line_of(a), "keyword",
                                                   f"where {{ {key} = ... }}: no GraphPPL/RxInfer plugin reads `{key}` "
                                                   f"(read: {', '.join(sorted(where_kw))})"))
    return out


def _function_bodies(root):
    """(definition node, body nodes) of every function: long form, short form, closures inside."""
    for n in js.walk(root):
        if n.type == "function_definition":
            yield n, [c for c in js.named_children(n) if c.type != "signature"]
        elif is_short_definition(n):
            yield n, js.named_children(n)[1:]


def _callee_name(call) -> str:
    callee, _ = call_parts(call)
    return js.text(callee) if callee is not None else ""


def _contains_eval(nodes) -> bool:
    for b in nodes:
        for x in js.walk(b):
            if (x.type == "call_expression" and _callee_name(x) in EVAL_CALLEES) or js.macro_name(x) == "@eval":
                return True
    return False


def check_world_age(unit: Unit) -> list[Finding]:
    out = []
    for path, _, tree in unit.files:
        for fn, body in _function_bodies(tree.root_node):
            if fn.parent is not None and any(a.type == "function_definition" for a in ancestors(fn)):
                continue                       # closures are checked as part of their function
            # local closures that evaluate code
            eval_like = set(EVAL_CALLEES)
            for b in body:
                for x in js.walk(b):
                    if is_short_definition(x) and _contains_eval(js.named_children(x)[1:]):
                        callee, _ = call_parts(strip_signature(js.named_children(x)[0]))
                        eval_like.add(js.text(callee))
            first_eval, tainted = None, set()
            calls = [x for b in body for x in js.walk(b) if x.type == "call_expression"]
            for x in js.walk(fn):
                if x.type == "assignment" and not is_short_definition(x):
                    rhs = js.named_children(x)[-1]
                    if rhs.type == "call_expression" and _callee_name(rhs) in eval_like:
                        tainted.update(pattern_names(js.named_children(x)[0]))
            for x in calls:
                name = _callee_name(x)
                if name in eval_like:
                    first_eval = x.start_byte if first_eval is None else min(first_eval, x.start_byte)
            if first_eval is None:
                continue
            # values built from tainted values are tainted (one pass in document order)
            for x in js.walk(fn):
                if x.type == "assignment" and not is_short_definition(x) and x.start_byte > first_eval:
                    rhs = js.named_children(x)[-1]
                    if rhs.type == "call_expression" and _callee_name(rhs) in INVOKELATEST:
                        continue
                    if any(i.type == "identifier" and js.text(i) in tainted for i in js.walk(rhs)):
                        tainted.update(pattern_names(js.named_children(x)[0]))
            for x in calls:
                if x.start_byte <= first_eval:
                    continue
                name = _callee_name(x)
                if name in eval_like or name in INVOKELATEST or name.split("{", 1)[0] in SAFE_AFTER_EVAL:
                    continue
                if any(a.type == "call_expression" and _callee_name(a) in INVOKELATEST for a in ancestors(x)):
                    continue
                _, alist = call_parts(x)
                arg_idents = {js.text(i) for i in js.walk(alist) if i.type == "identifier"} if alist is not None else set()
                if name in tainted or arg_idents & tainted or name == "infer":
                    out.append(Finding(path, line_of(x), "world-age",
                                       f"`{name}(...)` is called after code was evaluated in the same function "
                                       f"(the new methods are newer than the running world): call it through "
                                       f"Base.invokelatest"))
    return out


# --- half-edges ---------------------------------------------------------------------------------
def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _loop_ranges(node) -> dict[str, str]:
    """Loop variable → range text for the for-loops around ``node``."""
    out = {}
    for a in ancestors(node):
        if a.type == "for_statement":
            for b in js.named_children(a):
                if b.type == "for_binding":
                    kids = js.named_children(b)
                    if kids and kids[0].type == "identifier":
                        out.setdefault(js.text(kids[0]), js.text(kids[-1]))
    return out


def _range_end(rng: str) -> str | None:
    """Symbolic last value of ``a:b`` / ``eachindex(x)`` / ``1:length(x)``."""
    rng = _norm(rng)
    m = re.match(r"^eachindex\((\w+)\)$", rng)
    if m:
        return f"length({m.group(1)})"
    if ":" in rng and not rng.startswith(":"):
        return rng.split(":")[-1]
    return None


def _last_index(index_text: str, ranges: dict[str, str]) -> str | None:
    """Symbolic value of an index expression at the last iteration of its loops."""
    idx = _norm(index_text)
    for var, rng in ranges.items():
        if re.search(rf"\b{re.escape(var)}\b", idx):
            end = _range_end(rng)
            if end is None:
                return None
            idx = re.sub(rf"\b{re.escape(var)}\b", f"({end})" if any(o in end for o in "+-") else end, idx)
    return idx


def _simplify(expr: str) -> str:
    """``(n)+1`` → ``n+1``; ``n+1-1`` → ``n``; enough for loop bounds."""
    e = _norm(expr)
    e = re.sub(r"^\(([^()]*)\)", r"\1", e)
    m = re.match(r"^(.*?)([+-]\d+)?([+-]\d+)?$", e)
    base, a, b = m.group(1), int(m.group(2) or 0), int(m.group(3) or 0)
    k = a + b
    return base if k == 0 else f"{base}{k:+d}"


def check_half_edges(unit: Unit) -> list[Finding]:
    out = []
    for path, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            if js.macro_name(n) != "@model":
                continue
            fn = next((a for a in js.macro_arguments(n) if a.type == "function_definition"), None)
            if fn is None:
                continue
            call, _ = signature_call(fn)
            model_args = {p for prm in parameters(call) for p in pattern_names(prm)} if call is not None else set()
            defs: dict[str, list] = {}
            uses: dict[str, list] = {}
            for x in js.walk(fn):
                if x.type != "compound_assignment_expression" or not any(js.text(c) == "~" for c in x.children):
                    continue
                lhs, rhs = js.named_children(x)[0], js.named_children(x)[-1]
                if lhs.type == "index_expression":
                    var = js.text(js.named_children(lhs)[0])
                    idx = js.text(js.named_children(lhs)[1]).strip("[]")
                else:
                    var, idx = js.text(lhs), None
                if var not in model_args:
                    defs.setdefault(var, []).append((x, idx))
                for r in js.walk(rhs):
                    if r.type == "index_expression" and js.named_children(r)[0].type == "identifier":
                        uses.setdefault(js.text(js.named_children(r)[0]), []).append(
                            (r, js.text(js.named_children(r)[1]).strip("[]")))
                    elif r.type == "identifier" and (r.parent is None or r.parent.type != "index_expression"
                                                     or js.named_children(r.parent)[0] != r):
                        uses.setdefault(js.text(r), []).append((r, None))
                # the LHS data variable is itself a node neighbour of the variables it indexes
                if lhs.type == "index_expression":
                    for r in js.walk(js.named_children(lhs)[1]):
                        if r.type == "index_expression":
                            uses.setdefault(js.text(js.named_children(r)[0]), []).append(
                                (r, js.text(js.named_children(r)[1]).strip("[]")))
            for var, dlist in defs.items():
                var_uses = uses.get(var, [])
                if not var_uses:
                    x, _ = dlist[0]
                    out.append(Finding(path, line_of(x), "half-edge",
                                       f"`{var}` is used by no other node: a variable with a single neighbour "
                                       f"(RxInfer rejects half-edges)"))
                    continue
                if all(idx is None for _, idx in dlist):
                    continue
                ends = []
                for x, idx in dlist:
                    if idx is None:
                        continue
                    e = _last_index(idx, _loop_ranges(x))
                    ends.append((x, _simplify(e) if e is not None else None))
                x_last, last = max(ends, key=lambda t: t[0].start_byte)
                if last is None:
                    continue
                covered, data_dependent = False, []
                for u, idx in var_uses:
                    if idx is None:
                        covered = True
                        break
                    if re.search(r"\w+\[", idx):                    # index read from an array: data-dependent
                        data_dependent.append(u)
                        continue
                    e = _last_index(idx, _loop_ranges(u))
                    if e is not None and _simplify(e) == last:
                        covered = True
                        break
                if not covered:
                    how = (f"only through the data-dependent index `{js.text(data_dependent[0])}`"
                           if data_dependent else "by no other node")
                    out.append(Finding(path, line_of(x_last), "half-edge",
                                       f"`{var}[{last}]` (the last `{var}`) is used {how}: for inputs that miss "
                                       f"it the variable has a single neighbour (RxInfer rejects half-edges)"))
    return out


# --- fields -------------------------------------------------------------------------------------
def _type_base(t) -> str | None:
    while t is not None and t.type in ("parametrized_type_expression",):
        t = js.named_children(t)[0]
    if t is not None and t.type == "identifier":
        return js.text(t)
    if t is not None and t.type == "field_expression":
        return js.text(js.named_children(t)[-1])
    return None


def check_fields(unit: Unit, structs: dict[str, list[str]]) -> list[Finding]:
    out = []
    for path, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            params = []
            body = []
            if n.type == "function_definition" or is_short_definition(n):
                call, _ = signature_call(n)
                params = parameters(call) if call is not None else []
                body = [c for c in js.named_children(n) if c.type != "signature"][1 if n.type == "assignment" else 0:]
            elif n.type == "assignment" and n.parent is not None and n.parent.type == "macro_argument_list":
                lhs = js.named_children(n)[0]          # @rule N(...) (q_a::T, ...) = body
                if lhs.type in ("tuple_expression", "parenthesized_expression"):
                    params, body = js.named_children(lhs), js.named_children(n)[1:]
            annotated = {}
            for p in params:
                if p.type == "typed_expression":
                    kids = js.named_children(p)
                    if len(kids) == 2 and kids[0].type == "identifier":
                        tname = _type_base(kids[1])
                        if tname in structs:
                            annotated[js.text(kids[0])] = tname
            if not annotated:
                continue
            for b in body:
                for x in js.walk(b):
                    if x.type == "field_expression":
                        kids = js.named_children(x)
                        if len(kids) == 2 and kids[0].type == "identifier" and js.text(kids[0]) in annotated:
                            tname, fname = annotated[js.text(kids[0])], js.text(kids[1])
                            if fname not in structs[tname]:
                                out.append(Finding(path, line_of(x), "field",
                                                   f"`{js.text(x)}`: {tname} has no field `{fname}` "
                                                   f"(fields: {', '.join(structs[tname]) or 'none'})"))
    return out


# ------------------------------------------------------------------------------------------------
def positional_arity(call) -> tuple[int, int | None]:
    """(fewest, most) positional arguments a method signature takes; most is None with ``xs...``."""
    _, args = call_parts(call)
    required = optional = 0
    for c in (args.children if args is not None else []):
        if c.type == ";":
            break
        if c.type == "splat_expression":
            return required, None
        if c.type == "named_argument":
            optional += 1
        elif c.is_named:
            required += 1
    return required, required + optional


def julia_arities(unit: Unit) -> dict[str, list[tuple[int, int | None]]]:
    """Function name → the positional arities of its methods defined in the unit."""
    out: dict[str, list] = {}
    for _, _, tree in unit.files:
        for n in js.walk(tree.root_node):
            if n.type == "function_definition" or is_short_definition(n):
                call, _ = signature_call(n)
                callee = call_parts(call)[0] if call is not None else None
                if callee is not None and callee.type == "identifier":
                    out.setdefault(js.text(callee), []).append(positional_arity(call))
    return out


class BridgeCall(NamedTuple):
    path: str
    line: int
    function: str
    n_args: int
    starred: bool      # a ``*args`` in the call: n_args is a lower bound


def python_bridge_calls(python_dir: Path) -> list[BridgeCall]:
    """Every ``call("py_name", ...)`` in the Python files under ``python_dir``."""
    out = []
    for f in sorted(Path(python_dir).rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
            first = node.args[0]
            if (name == BRIDGE_CALLEE and isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and BRIDGE_FUNCTION_RE.match(first.value)):
                rest = node.args[1:]
                out.append(BridgeCall(str(f), node.lineno, first.value,
                                      sum(not isinstance(a, ast.Starred) for a in rest),
                                      any(isinstance(a, ast.Starred) for a in rest)))
    return out


def _arity_text(arities) -> str:
    return " or ".join(sorted({f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
                               for lo, hi in arities}))


def check_bridge(src: Unit, python_dir: Path) -> list[Finding]:
    """Python's ``call("py_name", args...)`` against the functions the package's ``src/`` defines."""
    arities = julia_arities(src)
    out = []
    for c in python_bridge_calls(python_dir):
        if c.function not in arities:
            out.append(Finding(c.path, c.line, "bridge", f"`{c.function}` is called from Python but the Julia "
                                                           f"package defines no function `{c.function}`"))
            continue
        fits = any((hi is None or c.n_args <= hi) and (c.starred or c.n_args >= lo) for lo, hi in arities[c.function])
        if not fits:
            given = f"{c.n_args} or more" if c.starred else f"{c.n_args}"
            out.append(Finding(c.path, c.line, "bridge",
                               f"`{c.function}` is called with {given} positional arguments; its Julia methods "
                               f"take {_arity_text(arities[c.function])}"))
    return out


# ------------------------------------------------------------------------------------------------
def load_units(julia_dir: Path) -> list[Unit]:
    files = sorted(julia_dir.rglob("*.jl"))
    src = [f for f in files if (julia_dir / "src") in f.parents]
    rest = [f for f in files if f not in src]

    def entry(f):
        data = f.read_bytes()
        return (str(f), data, js.parse(data))

    units = [Unit("src", [entry(f) for f in src])] if src else []
    units += [Unit(str(f), [entry(f)]) for f in rest]
    return units


def check(julia_dir, index: dict | None = None, python_dir=PYTHON_DIR) -> list[Finding]:
    """Findings on ``julia_dir``; with ``python_dir`` (None: skipped), its bridge calls as well."""
    julia_dir = Path(julia_dir)
    index = load_index() if index is None else index
    units = load_units(julia_dir)
    structs: dict[str, list[str]] = {}
    nodes: dict[str, list[str]] = {}
    for pkg in index["packages"].values():
        for k, v in pkg["structs"].items():
            structs.setdefault(k, v)
        nodes.update(pkg["nodes"])
    local_exports, local_defs, unit_defs, unit_imports = {}, {}, {}, {}
    for u in units:
        defs, exports = set(), set()
        imp = Imports()
        for _, src, tree in u.files:
            defs |= collect_definitions(tree.root_node)
            exports |= set(js.export_names(tree.root_node))
            fi = collect_imports(tree.root_node)
            imp.modules += fi.modules
            imp.names.update(fi.names)
            imp.selected += fi.selected
            imp.aliases.update(fi.aliases)
            nodes.update(js.node_declarations(src.decode("utf-8", "replace")))
            for n in js.walk(tree.root_node):
                if n.type == "struct_definition":
                    sf = js.struct_fields(n)
                    if sf:
                        structs[sf[0]] = sf[1]
        unit_defs[u.name], unit_imports[u.name] = defs, imp
        if u.name == "src":
            for _, _, tree in u.files:
                for n in js.walk(tree.root_node):
                    if n.type == "module_definition":
                        mod = js.text(js.named_children(n)[0])
                        local_exports[mod] = exports
                        local_defs[mod] = defs | exports
    findings = []
    signatures = local_rule_signatures(units)
    for u in units:
        defs, imp = unit_defs[u.name], unit_imports[u.name]
        findings += check_rule_calls(u, signatures)
        findings += check_names(u, index, local_exports, local_defs, defs, imp)
        findings += check_rules(u, nodes)
        findings += check_keywords(u, index)
        findings += check_world_age(u)
        findings += check_half_edges(u)
        findings += check_fields(u, structs)
        if u.name == "src" and python_dir is not None:
            findings += check_bridge(u, Path(python_dir))
    return sorted(set(findings), key=lambda f: (f.path, f.line, f.kind, f.message))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    julia_dir = Path(argv[0]) if argv else ROOT / "julia"
    python_dir = Path(argv[1]) if len(argv) > 1 else PYTHON_DIR
    for label, d in (("JULIA_DIR", julia_dir), ("PYTHON_DIR", python_dir)):
        if not d.is_dir():
            print(f"{label}: {d} is not a directory", file=sys.stderr)
            return 2
    try:
        findings = check(julia_dir, python_dir=python_dir)
    except ImportError as exc:     # the parser comes with the dev extra
        print(f"check_julia_static: cannot parse Julia here ({exc}); install the dev extra: "
              "pip install -e '.[dev]' (tree-sitter, tree-sitter-julia)", file=sys.stderr)
        return 2
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
