"""The ``MLOPS_*`` environment variables the data plane reads, found in the code itself.

Sources (each a way a process really reads a variable):

* every pydantic ``BaseSettings`` subclass in ``ml/`` (``Settings``):
  its fields under its ``env_prefix`` (or a field's own alias);
* every ``envvar=`` of an option of the ``mlops`` CLI;
* ``os.environ.get(X)``, ``os.environ[X]``, ``os.getenv(X)``, ``X in os.environ`` in ``ml/``
  and ``contract/``, where ``X`` is a literal, a module constant, an imported constant
  (``contract.env.POD_NAME``) or ``contract.env.bucket("<role>")``; ``bucket(role)`` with a
  non-literal role reads every role's bucket variable.

Names merely listed in ``contract.env`` do not count: a constant nothing reads is the defect.
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

from rendered_pods import ROOT

SCANNED = ("ml", "contract")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


def _settings_names() -> set[str]:
    """Fields of every BaseSettings subclass defined in ml/ (imported to read the real model)."""
    names: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                "BaseSettings" in ast.unparse(b) for b in node.bases
            ):
                model = getattr(importlib.import_module(_module_name(path)), node.name)
                prefix = model.model_config.get("env_prefix", "")
                for field_name, field in model.model_fields.items():
                    alias = field.validation_alias or field.alias
                    names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}")
    return {n.upper() for n in names}


def _cli_names() -> set[str]:
    """``envvar=`` of every option of every ``mlops`` command."""
    import typer

    from ml.cli.main import app

    names: set[str] = set()
    stack = [typer.main.get_command(app)]
    while stack:
        command = stack.pop()
        stack.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


class _Reads(ast.NodeVisitor):
    """Collect the variable names one module reads from ``os.environ``."""

    def __init__(self, module: str, tree: ast.Module) -> None:
        self.module, self.names = module, set()
        self.constants = {
            t.id: n.value.value
            for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name) and isinstance(n.value.value, str)
        }
        self.imported: dict[str, tuple[str, str | None]] = {}  # local -> (module, attr)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    self.imported[a.asname or a.name] = (node.module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    self.imported[a.asname or a.name] = (a.name, None)

    def _resolve(self, local: str) -> object:
        if local in self.constants:
            return self.constants[local]
        if local not in self.imported:
            return None
        module, attr = self.imported[local]
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            if attr is None:
                return None
            loaded = importlib.import_module(f"{module}.{attr}")
            return loaded
        return getattr(loaded, attr, None) if attr else loaded

    def _value(self, node: ast.expr) -> set[str]:
        from contract import env

        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name):
            value = self._resolve(node.id)
            return {value} if isinstance(value, str) else set()
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            value = getattr(self._resolve(node.value.id), node.attr, None)
            return {value} if isinstance(value, str) else set()
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("env.bucket", "bucket"):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant):
                return {env.bucket(arg.value)}
            from contract.objectstore import BUCKETS

            return {env.bucket(role) for role in BUCKETS}  # any role: the caller chooses
        return set()

    def visit_Call(self, node: ast.Call) -> None:
        func = ast.unparse(node.func)
        if func in ("os.environ.get", "os.getenv", "environ.get", "getenv") and node.args:
            self.names |= self._value(node.args[0])
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if ast.unparse(node.value) in ("os.environ", "environ"):
            self.names |= self._value(node.slice)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if any(ast.unparse(c) in ("os.environ", "environ") for c in node.comparators):
            self.names |= self._value(node.left)
        self.generic_visit(node)


def _literal_reads() -> set[str]:
    names: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text())
        reads = _Reads(_module_name(path), tree)
        reads.visit(tree)
        names |= reads.names
    return names


@cache
def read_by_code() -> frozenset[str]:
    """Every environment variable name the data plane reads (upper case)."""
    return frozenset(_settings_names() | _cli_names() | _literal_reads())
