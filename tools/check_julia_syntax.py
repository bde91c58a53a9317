#!/usr/bin/env python
"""Syntax gate for the Julia sources: parse every .jl file with tree-sitter's Julia grammar.

There is no Julia on the CI machines, so this is what CI can prove about julia/: every file parses
with zero ERROR and zero MISSING nodes. It is a syntax gate, not a compiler (it does not resolve
names, and the grammar misses e.g. a stray extra ``end``). The grammar rejects the ``@constraints``
juxtaposition idiom ``q(x, y) = q(x)q(y)``; PyRxAIF writes ``q(x) * q(y)`` instead (valid RxInfer),
so no allow-list is needed.

Usage: python tools/check_julia_syntax.py [PATH ...]   (default: julia/). Exit status 1 on errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class SyntaxProblem(NamedTuple):
    path: str
    line: int  # 1-based
    column: int  # 1-based
    kind: str  # "ERROR" or "MISSING <node type>"
    text: str


def _parser():
    import tree_sitter_julia  # noqa: PLC0415
    from tree_sitter import Language, Parser  # noqa: PLC0415

    return Parser(Language(tree_sitter_julia.language()))


def check_source(source: str | bytes, path: str = "<string>", parser=None) -> list[SyntaxProblem]:
    """Every ERROR / MISSING node in ``source``, in document order."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    tree = (parser or _parser()).parse(data)
    problems: list[SyntaxProblem] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            kind = "ERROR" if node.type == "ERROR" else f"MISSING {node.type}"
            line_no = node.start_point[0]
            line = data.split(b"\n")[line_no].decode("utf-8", "replace").strip() if data else ""
            problems.append(SyntaxProblem(path, line_no + 1, node.start_point[1] + 1, kind, line[:120]))
        if node.has_error or node.is_missing:
            stack.extend(reversed(node.children))
    return sorted(problems, key=lambda p: (p.line, p.column))


def julia_files(paths) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.jl")))
        elif p.suffix == ".jl":
            out.append(p)
        else:
            raise ValueError(f"paths: {p} is neither a directory nor a .jl file")
    return out


def check_paths(paths) -> tuple[list[Path], list[SyntaxProblem]]:
    files = julia_files(paths)
    parser = _parser()
    problems = [pr for f in files for pr in check_source(f.read_bytes(), str(f), parser)]
    return files, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "julia")])
    args = ap.parse_args(argv)
    files, problems = check_paths(args.paths)
    if not files:
        print("check_julia_syntax: no .jl files found", file=sys.stderr)
        return 1
    for p in problems:
        print(f"{p.path}:{p.line}:{p.column}: {p.kind}: {p.text}")
    print(f"check_julia_syntax: {len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
