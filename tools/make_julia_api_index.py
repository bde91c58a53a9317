#!/usr/bin/env python
"""Write tools/julia_api_index.json: the API of the pinned Julia packages, read from their sources.

The static checker (tools/check_julia_static.py) works from this index, so it needs no Julia. The
index holds, per package at the version that julia/Project.toml and pyrxaif/juliapkg.json resolve
to: the exported names (``@reexport using`` followed), every name the package defines or imports
(for ``import Pkg: name`` and ``Pkg.name``), struct fields, the interfaces of every ``@node``,
the keyword arguments of RxInfer's ``infer`` and the ``where { ... }`` keys that RxInfer/GraphPPL
read; Base's exported names; and the pins it was generated for (a test fails when the pins change
without regenerating).

Sources: git mirrors of the packages (``--mirror DIR`` holding ``<owner>+<name>/repo`` bare git
directories, as the ``fetch`` tool of this project's workspace writes them; any clone works with
``--git-dir PKG=PATH``), read at the tags below with ``git show``; Base's exports from a copy of
``base/exports.jl`` (``--base-exports FILE``).

Usage: python tools/make_julia_api_index.py [--mirror DIR] [--base-exports FILE] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import julia_source as js  # noqa: E402

INDEX_PATH = ROOT / "tools" / "julia_api_index.json"
PROJECT_TOML = ROOT / "julia" / "Project.toml"
JULIAPKG_JSON = ROOT / "pyrxaif" / "juliapkg.json"

# Package → (GitHub repository, tag read). The versions are those the pins resolve to: RxInfer "5"
# → 5.0.0 (the only 5.x), which requires ReactiveMP ~6.0.0 → 6.0.0 and GraphPPL ~4.6.0 → 4.6.6;
# ExponentialFamily "2.5" → 2.5.1; BayesBase "1.5" → 1.5.8; Distributions "0.25" → 0.25.129;
# RxInfer's Rocket "1.8.0" → 1.9.0 and FastCholesky "1.3.0" → 1.4.3; LogExpFunctions "0.3" →
# 0.3.29. LinearAlgebra is a standard library without tags in its own repository: its HEAD.
PACKAGES = {
    "RxInfer": ("ReactiveBayes/RxInfer.jl", "v5.0.0"),
    "ReactiveMP": ("ReactiveBayes/ReactiveMP.jl", "v6.0.0"),
    "GraphPPL": ("ReactiveBayes/GraphPPL.jl", "v4.6.6"),
    "ExponentialFamily": ("ReactiveBayes/ExponentialFamily.jl", "v2.5.1"),
    "BayesBase": ("ReactiveBayes/BayesBase.jl", "v1.5.8"),
    "Distributions": ("JuliaStats/Distributions.jl", "v0.25.129"),
    "Rocket": ("ReactiveBayes/Rocket.jl", "v1.9.0"),
    "FastCholesky": ("ReactiveBayes/FastCholesky.jl", "v1.4.3"),
    "LogExpFunctions": ("JuliaStats/LogExpFunctions.jl", "v0.3.29"),
    "LinearAlgebra": ("JuliaLang/LinearAlgebra.jl", "HEAD"),
}

# Names of Core (always visible, not in base/exports.jl). Hand-listed: the builtin types, functions
# and constants Julia code uses without any import.
CORE_NAMES = sorted("""
Any Union UnionAll Type DataType TypeVar Nothing nothing Bool true false Int Int8 Int16 Int32 Int64
Int128 UInt UInt8 UInt16 UInt32 UInt64 UInt128 Float16 Float32 Float64 Real Integer Signed Unsigned
AbstractFloat Number Char AbstractChar String AbstractString Symbol Tuple NamedTuple Vararg Function
Module Core Base Main Expr QuoteNode LineNumberNode GlobalRef Ptr Ref Array AbstractArray DenseArray
Exception ErrorException ArgumentError MethodError BoundsError DomainError InexactError
OverflowError DivideError UndefVarError UndefKeywordError TypeError KeyError AssertionError
StackOverflowError OutOfMemoryError InterruptException LoadError InitError UndefRefError
Task WeakRef Method Val isa typeof tuple getfield setfield! fieldtype nfields throw ifelse
applicable invoke sizeof svec include eval undef UndefInitializer Pair NTuple Some IO Cvoid
Enum Missing missing Irrational Rational Complex BigFloat BigInt Dict Vector Matrix VecOrMat
""".split())

# Standard libraries our tests use whose repositories are not read here (names hand-listed).
STDLIB_EXPORTS = {
    "Test": ["@test", "@testset", "@test_throws", "@test_broken", "@test_skip", "@test_logs",
             "@test_warn", "@test_nowarn", "@inferred"],
    "Statistics": ["mean", "median", "std", "var", "cov", "cor", "quantile", "middle", "stdm", "varm"],
}

# DiscreteTransition declares its interfaces with alias_interface, not @node (ReactiveMP
# src/nodes/predefined/discrete_transition.jl): out, in, a, then T1, T2, ...
ALIAS_DECLARED_NODES = {"DiscreteTransition": ("src/nodes/predefined/discrete_transition.jl", ["out", "in", "a"])}


def git(git_dir: Path, *args) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True,
                          text=True).stdout


def package_files(git_dir: Path, tag: str) -> dict[str, bytes]:
    names = [n for n in git(git_dir, "ls-tree", "-r", "--name-only", tag, "--", "src").splitlines()
             if n.endswith(".jl")]
    return {n: subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{tag}:{n}"], check=True,
                              capture_output=True).stdout for n in names}


_REEXPORT_RE = re.compile(r"@reexport\s+using\s+([\w\s,.]+?)(?:\n\s*\n|\n(?!\s))", re.S)
_IMPORT_LIST_RE = re.compile(r"^\s*(?:using|import)\s+[\w.]+\s*:\s*(.+?)$", re.M)


def defined_names(root) -> set[str]:
    """Names a package defines (functions, types, consts, macros) or imports by name."""
    out = set()
    for n in js.walk(root):
        t = n.type
        if t in ("function_definition", "macro_definition"):
            sig = next((c for c in n.children if c.type == "signature"), None)
            call = js.named_children(sig)[0] if sig is not None and js.named_children(sig) else None
            while call is not None and call.type in ("where_expression", "typed_expression"):
                call = js.named_children(call)[0]
            if call is not None and call.type == "call_expression":
                name = js.text(js.named_children(call)[0]).rsplit(".", 1)[-1]
                out.add(("@" if t == "macro_definition" else "") + name)
        elif t == "assignment":
            lhs = js.named_children(n)[0]
            while lhs.type in ("where_expression", "typed_expression"):
                lhs = js.named_children(lhs)[0]
            if lhs.type == "call_expression":
                out.add(js.text(js.named_children(lhs)[0]).rsplit(".", 1)[-1].split("{")[0])
            elif lhs.type == "identifier":
                out.add(js.text(lhs))
        elif t in js.TYPE_DEFINITIONS:
            if js.type_name(n):
                out.add(js.type_name(n))
        elif t == "module_definition":
            out.add(js.text(js.named_children(n)[0]))
    return out


def read_package(name: str, git_dir: Path, tag: str) -> dict:
    files = package_files(git_dir, tag)
    exports, defined, structs, nodes, reexports = set(), set(), {}, {}, []
    for path, data in files.items():
        root = js.parse(data).root_node
        exports.update(js.export_names(root))
        defined.update(defined_names(root))
        src = data.decode("utf-8", "replace")
        for m in _IMPORT_LIST_RE.finditer(src):
            for part in js.split_top_level(m.group(1).split("#", 1)[0]):
                defined.add(part.split(" as ")[-1].strip())
        for n in js.walk(root):
            if n.type == "struct_definition":
                sf = js.struct_fields(n)
                if sf:
                    structs.setdefault(sf[0], sf[1])
        nodes.update(js.node_declarations(src))
        for m in _REEXPORT_RE.finditer(src):
            reexports.extend(p.strip() for p in m.group(1).split(",") if p.strip())
    for node, (path, ifaces) in ALIAS_DECLARED_NODES.items():
        if path in files:
            body = files[path].decode()
            if not all(f"return :{i}" in body for i in ifaces):
                raise SystemExit(f"{name}: {path} no longer declares {node}'s interfaces {ifaces}")
            nodes[node] = ifaces
    commit = git(git_dir, "rev-list", "-n", "1", tag).strip()
    return {"tag": tag, "commit": commit, "exports": sorted(exports), "reexports": sorted(set(reexports)),
            "defined": sorted(defined | exports), "structs": dict(sorted(structs.items())),
            "nodes": dict(sorted(nodes.items()))}


def infer_keywords(git_dir: Path, tag: str) -> list[str]:
    src = git(git_dir, "show", f"{tag}:src/inference/inference.jl")
    m = re.search(r"^function infer\(;\n(.*?)^\)", src, re.S | re.M)
    if not m:
        raise SystemExit("RxInfer: `function infer(;` not found in src/inference/inference.jl")
    # keywords kept only to raise a migration error ("# removed") are not accepted
    return sorted({re.match(r"\s*(\w+)", line).group(1) for line in m.group(1).splitlines()
                   if re.match(r"\s*\w+\s*=", line) and "# removed" not in line})


def where_keys(files_by_pkg: dict[str, dict[str, bytes]]) -> list[str]:
    """Keys of ``where { key = ... }`` that GraphPPL's plugins or RxInfer read from NodeCreationOptions."""
    keys = set()
    patterns = {"GraphPPL": re.compile(r"(?:haskey|get|getindex)\(options,\s*:(\w+)"),     # NodeCreationOptions
                "RxInfer": re.compile(r"NodeDataExtraKey\{\s*:(\w+)")}                        # ReactiveMP plugin
    for pkg, files in files_by_pkg.items():
        for data in files.values():
            keys.update(patterns[pkg].findall(data.decode("utf-8", "replace")))
    return sorted(keys)


def toml_table(text: str, table: str) -> dict[str, str]:
    """``key = "value"`` lines of one ``[table]`` of a TOML file (all Project.toml's [compat] has;
    no tomllib on Python 3.10)."""
    out, inside = {}, False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            inside = line == f"[{table}]"
        elif inside and "=" in line:
            key, value = (p.strip() for p in line.split("=", 1))
            out[key] = value.strip('"')
    return out


def current_pins() -> dict:
    project = {"compat": toml_table(PROJECT_TOML.read_text(), "compat")}
    juliapkg = json.loads(JULIAPKG_JSON.read_text())
    return {"julia/Project.toml compat": dict(sorted(project.get("compat", {}).items())),
            "pyrxaif/juliapkg.json": {"julia": juliapkg.get("julia"),
                                      "packages": {k: v.get("version", v.get("path"))
                                                   for k, v in sorted(juliapkg.get("packages", {}).items())}}}


def base_exports(path: Path) -> list[str]:
    return sorted(set(js.export_names(js.parse(path.read_bytes()).root_node)))


def build(mirror: Path, base_exports_file: Path, git_dirs: dict[str, Path]) -> dict:
    packages, files_by_pkg = {}, {}
    for name, (repo, tag) in PACKAGES.items():
        git_dir = git_dirs.get(name, mirror / repo.replace("/", "+") / "repo")
        packages[name] = {"repository": repo, **read_package(name, git_dir, tag)}
        if name in ("RxInfer", "GraphPPL"):
            files_by_pkg[name] = package_files(git_dir, tag)
    rx_dir = git_dirs.get("RxInfer", mirror / "ReactiveBayes+RxInfer.jl" / "repo")
    return {
        "generator": "tools/make_julia_api_index.py",
        "pins": current_pins(),
        "packages": packages,
        "stdlib_exports": STDLIB_EXPORTS,
        "core_names": CORE_NAMES,
        "base_exports": base_exports(base_exports_file),
        "base_exports_source": "JuliaLang/julia base/exports.jl (commit 00013807a74d3c87e0d29a5c41746d1809716061)",
        "infer_keywords": infer_keywords(rx_dir, PACKAGES["RxInfer"][1]),
        "where_keys": where_keys(files_by_pkg),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--base-exports", type=Path, default=Path("/tmp/jlsrc/julia/base/exports.jl"))
    ap.add_argument("--git-dir", action="append", default=[], metavar="PKG=PATH")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed index differs")
    args = ap.parse_args(argv)
    git_dirs = dict((k, Path(v)) for k, v in (s.split("=", 1) for s in args.git_dir))
    index = build(args.mirror, args.base_exports, git_dirs)
    text = json.dumps(index, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    if args.check:
        same = INDEX_PATH.exists() and INDEX_PATH.read_text() == text
        print("index is current" if same else f"{INDEX_PATH} is out of date; rerun without --check")
        return 0 if same else 1
    INDEX_PATH.write_text(text)
    print(f"wrote {INDEX_PATH.relative_to(ROOT)}: {len(index['packages'])} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
