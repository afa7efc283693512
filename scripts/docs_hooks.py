"""mkdocs hooks: the reference pages that are generated from the code at every build.

A page holds a marker line and the hook replaces it with markdown built from the code, so the
pages cannot drift from what the toolkit does:

``<!-- generated: run-config -->``
    every `RunConfig` field: its flag, type, default and help text (the same help `deception run
    --help` shows);
``<!-- generated: plugin-options -->``
    the options plugins add to `deception run` (``register_run_options``), the same columns;
``<!-- generated: component-settings -->``
    every registered component (of the installed plugins) that takes settings, with each field's
    type, default and meaning (the comment above or beside the field in its settings class, or the
    ````name````: paragraph of the class docstring);
``<!-- generated: public-api -->``
    a mkdocstrings block for every name in each package's ``__all__`` (resolved to where it is
    defined, so lazily imported names are documented too).

`python scripts/docs_hooks.py PAGE` prints what a marker expands to (``run-config``, ...).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import attrs

#: the packages whose ``__all__`` is the public API, in the order the reference shows them
PUBLIC_PACKAGES = ("deception_core", "deception_scenarios", "deception_probes", "deception_causal")
UNDOCUMENTED = "*(no description in the source)*"


# -- fields and their meaning ------------------------------------------------------------------------------------


def _comment_text(lines: list[str]) -> str:
    return " ".join(re.sub(r"^#:?\s?", "", line.strip()) for line in lines).strip()


def docstring_meaning(doc: str, name: str) -> str:
    """What a docstring says about the setting ``name``: a row of a table whose first column is
    ````name```` (with the environment variable, where the table names one), ````name````: text, or
    ````name```` (text)."""
    row = re.search(rf"^``{name}``[ \t]{{2,}}(.+)$", doc, flags=re.M)
    if row:
        columns = re.split(r"\s{2,}", row.group(1).strip())
        return columns[-1] + (f" (environment: {columns[0]})" if len(columns) > 1 else "")
    colon = re.search(rf"``{name}``\s*:\s*(.+?)(?:\n\s*\n|$)", doc, flags=re.S)
    if colon:
        return " ".join(colon.group(1).split())
    paren = re.search(rf"``{name}``\s*\(((?:[^()]|\([^()]*\))*)\)", doc)
    return " ".join(paren.group(1).split()) if paren else ""


def source_field_docs(cls: type) -> dict[str, str]:
    """What the source says about each field of ``cls`` and its attrs bases: the comment lines right
    above the field, a comment at the end of its line, a string right after it, or else what the
    class docstring, then its module's docstring, says about ````name```` (`docstring_meaning`)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not attrs.has(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        module_doc = inspect.getdoc(sys.modules.get(klass.__module__)) or ""
        for field in attrs.fields(klass):
            meaning = docstring_meaning(klass.__dict__.get("__doc__") or "", field.name)
            meaning = meaning or docstring_meaning(module_doc, field.name)
            if meaning:
                docs[field.name] = meaning.replace("``", "`")
        statements = body.body
        for index, node in enumerate(statements):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            name = node.target.id
            above: list[str] = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#"):
                above.insert(0, lines[row])
                row -= 1
            end_line = lines[(node.end_lineno or node.lineno) - 1]
            trailing = end_line.split("  #", 1)[1] if "  #" in end_line else ""
            after = statements[index + 1] if index + 1 < len(statements) else None
            string_after = (after.value.value if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                            and isinstance(after.value.value, str) else "")
            text = " ".join(part for part in (_comment_text(above), trailing.strip(), " ".join(string_after.split()))
                            if part)
            if text:
                docs[name] = text
    return docs


def _type_text(field: attrs.Attribute[Any]) -> str:
    """The field's annotation; a union as ```A``` or ```B``` (a pipe would end the table cell)."""
    kind = field.type
    text = kind if isinstance(kind, str) else kind.__name__ if isinstance(kind, type) else str(kind)
    return " or ".join(f"`{part.strip()}`" for part in text.replace("typing.", "").split("|"))


def _default_text(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[call-arg]
    if default is attrs.NOTHING:
        return "*(required)*"
    if isinstance(default, tuple):
        default = [getattr(v, "value", v) for v in default]
    return f"`{default!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_config_table() -> str:
    """The `RunConfig` reference: one row per field."""
    from deception_core.config.run import RunConfig

    return options_table(RunConfig)


def plugin_options() -> str:
    """The options plugins add to `deception run` (``register_run_options``), one table per plugin."""
    from deception_core.plugins import build_plugin_set

    plugin_set = build_plugin_set()
    declared = plugin_set.run_options() if hasattr(plugin_set, "run_options") else []
    if not declared:
        return "No installed plugin adds options to `deception run`.\n"
    parts = []
    for options in declared:
        parts.append(f"### {options.owner}\n")
        parts.append(options_table(options.settings, field_label="key"))
    return "\n".join(parts)


def options_table(settings_class: type, field_label: str = "field") -> str:
    """One row per field of an attrs class whose fields are `deception run` options: key, flag, type,
    default and the help text (or the source's comment)."""
    from deception_core.config.structuring import cli_option

    source = source_field_docs(settings_class)
    rows = [f"| {field_label} | flag | type | default | meaning |", "|---|---|---|---|---|"]
    for field in attrs.fields(settings_class):
        cli = cli_option(field)
        flag = "*(config file only)*"
        meaning = source.get(field.name, "")
        if cli is not None and not cli.hidden:
            flag = f"`{cli.name or '--' + field.name.replace('_', '-')}`"
            meaning = cli.help or meaning or UNDOCUMENTED
            if cli.choices:
                meaning = f"{meaning} One of: {', '.join(f'`{c}`' for c in cli.choices)}.".strip()
            if cli.requires:
                meaning = f"{meaning} Only with `{cli.requires}`.".strip()
        rows.append(f"| `{field.name}` | {flag} | {_cell(_type_text(field))} | {_cell(_default_text(field))} | "
                    f"{_cell(meaning or UNDOCUMENTED)} |")
    return "\n".join(rows) + "\n"


def settings_table(settings_class: type) -> str:
    source = source_field_docs(settings_class)
    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for field in attrs.fields(settings_class):
        rows.append(f"| `{field.name}` | {_cell(_type_text(field))} | {_cell(_default_text(field))} | "
                    f"{_cell(source.get(field.name) or UNDOCUMENTED)} |")
    return "\n".join(rows) + "\n"


def component_settings() -> str:
    """Every registered component with a settings class, by kind, with its settings table."""
    from deception_core.base.registry import Kind
    from deception_core.plugins import build_plugin_set

    registry = build_plugin_set().registry
    parts: list[str] = []
    for kind in Kind:
        entries = sorted(registry.entries(kind), key=lambda e: e.name)
        with_settings = []
        for entry in entries:
            component = entry.load()
            settings_class = getattr(component, "settings_class", None)
            if settings_class is not None and attrs.has(settings_class):
                with_settings.append((entry, settings_class))
        if not with_settings:
            continue
        parts.append(f"## {kind.value.replace('_', ' ')}\n")
        without = [e.name for e in entries if e.name not in {w.name for w, _ in with_settings}]
        if without:
            parts.append(f"Without settings: {', '.join(f'`{n}`' for n in without)}.\n")
        for entry, settings_class in with_settings:
            parts.append(f"### `{entry.name}`\n")
            parts.append(f"{_cell(entry.summary)} Plugin `{entry.provider.plugin}`; settings class "
                         f"`{settings_class.__module__}.{settings_class.__qualname__}`; in a `--config` file: "
                         f"`components.{kind.value}.{entry.name}`.\n")
            parts.append(settings_table(settings_class))
    return "\n".join(parts)


# -- the public API ----------------------------------------------------------------------------------------------


def public_names(package: str) -> list[str]:
    module = importlib.import_module(package)
    return list(getattr(module, "__all__", []))


def definition_path(package: str, name: str) -> str | None:
    """Where ``package.name`` is defined (``module.qualname``), or None for a value without one."""
    obj = getattr(importlib.import_module(package), name)
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)) or module is None or qualname is None:
        return None
    if "<locals>" in qualname:
        return None
    return f"{module}.{qualname}"


def public_api_entries() -> Iterator[tuple[str, str, str | None]]:
    """``(package, name, definition path or None)`` for every public name."""
    for package in PUBLIC_PACKAGES:
        for name in public_names(package):
            yield package, name, definition_path(package, name)


def _plain_entry(package: str, name: str) -> str:
    """A name mkdocstrings cannot reach statically (a value, a function made at run time)."""
    obj = getattr(importlib.import_module(package), name)
    lines = [f"### `{name}`\n"]
    if callable(obj):
        with contextlib.suppress(TypeError, ValueError):
            lines.append(f"```python\n{name}{inspect.signature(obj)}\n```\n")
        lines.append((inspect.getdoc(obj) or UNDOCUMENTED) + "\n")
    else:
        lines.append(f"`{package}.{name}`: `{obj!r}`\n")
    return "\n".join(lines)


def public_api() -> str:
    parts: list[str] = []
    current = None
    for package, name, path in public_api_entries():
        if package != current:
            current = package
            doc = (inspect.getdoc(importlib.import_module(package)) or "").split("\n\n")[0]
            parts.append(f"## `{package}`\n\n{doc}\n")
        if path is None:
            parts.append(_plain_entry(package, name))
        else:
            parts.append(f"::: {path}\n    options:\n      heading: \"{package}.{name}\"\n      toc_label: \"{name}\"\n")
    return "\n".join(parts)


GENERATORS: dict[str, Callable[[], str]] = {
    "run-config": run_config_table,
    "plugin-options": plugin_options,
    "component-settings": component_settings,
    "public-api": public_api,
}
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", flags=re.M)


def expand(markdown: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # mkdocs hook
    return expand(markdown)


if __name__ == "__main__":
    print(GENERATORS[sys.argv[1]]())
