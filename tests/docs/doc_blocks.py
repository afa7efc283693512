"""The code blocks of the docs (docs/**/*.md) and the README, and what the test suite does with each.

A fenced block's info string says what it is: the language, and for shell blocks that cannot run
here, a ``title="..."`` that the site shows above the block:

- ``python``: executed, the blocks of one page in order in one namespace and one folder;
- ``bash`` without a title: executed command by command (``deception ...`` in this process through
  click, ``python ...`` in a subprocess), the blocks of one page in order in one folder;
- ``bash title="on a GPU pod"`` (or a title naming a cluster, Slurm or Ray, or "sets up the
  environment", or a block that calls ``scripts/bootstrap.sh``, as the README's two commands do):
  needs a pod, a cluster or a fresh machine, so it is checked, not run: ``bash -n``
  parses the block, every ``deception`` command is parsed by click and a ``run`` is validated by the
  project's own checks (config, scenarios, component settings, model id), and every file it names
  in the repository exists;
- ``json`` / ``yaml``: a `RunConfig` file, structured and checked;
- ``toml``: parsed, and an entry-point table must match the plugin template's;
- ``text`` or no language: shown output or a folder listing, not code.

Model substitution, as the tests' own fixtures do it: in the default suite ``embedded:gemma-3-270m``
becomes a tiny random model saved from a config with the embedded model's depth (18 blocks, so
layer numbers such as 9 stay valid), and a ``deception run`` gets ``--max-tokens 4`` (a random model
writes noise to the token limit: the time, and nothing learnt). The slow suite runs the same blocks
on the embedded model as written.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EMBEDDED = "embedded:gemma-3-270m"
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`\n]*)\n(?P<code>.*?)^(?P=indent)```\s*$", flags=re.M | re.S)
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")

#: the kinds of block, and how each is covered
RUN_PYTHON, RUN_SHELL, CHECK_SHELL, CONFIG, TOML, OUTPUT = "python", "shell", "checked shell", "config", "toml", "output"
CHECKED_TITLES = ("pod", "cluster", "slurm", "ray", "sets up the environment")


class Block(NamedTuple):
    page: str  # relative to the repository root
    line: int
    language: str
    title: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        if self.language == "python":
            return RUN_PYTHON
        if self.language in ("bash", "sh", "shell", "console"):
            checked = any(word in self.title.lower() for word in CHECKED_TITLES) or "scripts/bootstrap.sh" in self.code
            return CHECK_SHELL if checked else RUN_SHELL
        if self.language in ("json", "yaml"):
            return CONFIG
        if self.language == "toml":
            return TOML
        return OUTPUT


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def blocks_of(path: Path) -> Iterator[Block]:
    text = path.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        language = info.split(" ", 1)[0] if info else ""
        title_match = re.search(r'title="([^"]*)"', info)
        code = "\n".join(line[len(match.group("indent")):] for line in match.group("code").splitlines())
        yield Block(str(path.relative_to(ROOT)), text.count("\n", 0, match.start()) + 1, language,
                    title_match.group(1) if title_match else "", code)


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks_of(page)]


class Command(NamedTuple):
    env: dict[str, str]
    argv: list[str]


def commands(code: str) -> list[Command]:
    """The simple commands of a shell block: continuation lines joined, comments dropped, split at
    ``&&`` and ``;``; leading ``NAME=value`` words become the command's environment."""
    joined = re.sub(r"\\\n", " ", code)
    out: list[Command] = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", ";"):
                if current:
                    env = {}
                    while current and ENV_ASSIGNMENT.match(current[0]):
                        name, _, value = current.pop(0).partition("=")
                        env[name] = value
                    if current:
                        out.append(Command(env, current))
                current = []
            else:
                current.append(word)
    return out


def is_deception(argv: list[str]) -> bool:
    return bool(argv) and (argv[0] == "deception" or argv[0].endswith("/bin/deception"))


def is_python(argv: list[str]) -> bool:
    return bool(argv) and (argv[0] in ("python", "python3") or argv[0].endswith("/bin/python"))


def defined_names(code: str) -> set[str]:
    """The names a block binds at its top level (a block that ran to its end has bound them all)."""
    names: set[str] = set()
    for node in ast.parse(code).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names
