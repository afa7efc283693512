"""The `deception` command line.

The group loads a command's module only when that command runs or shows its help: the modules
import numpy and much of the toolkit, and `deception --help` should not wait for them. The group's
own help lists each command from the one-line summary kept below with its import path;
``tests/cli/test_lazy_group.py`` checks that each summary matches its command's docstring.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from gettext import gettext
from typing import Any

import attrs
import click

from deception_core.base.errors import EngineFailed, NotApplied, UsageError
from deception_core.plugins import PluginLoadWarning, get_plugin_set


@attrs.frozen
class LazyCommand:
    """Where a core command lives (``"module:attribute"``) and the summary `deception --help` shows."""

    import_path: str
    summary: str

    def load(self) -> click.Command:
        module_name, attribute = self.import_path.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.import_path} is a {type(command).__name__}, not a click command")
        return command


#: the core's commands (`deception --help` lists them sorted by name, as click does)
CORE_COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand("deception_core.cli.run:run",
                       "Run negotiation trials, capture activations, label, and train probes."),
    "scenarios": LazyCommand("deception_core.cli.listing:scenarios",
                             "List the registered scenarios and statement sets, with where their data comes from."),
    "plugins": LazyCommand("deception_core.cli.listing:plugins",
                           "List plugins, their versions and what each registers."),
    "analyze": LazyCommand("deception_core.cli.analyze:analyze",
                           "Train and evaluate probes on an existing dataset without regenerating it."),
    "merge": LazyCommand("deception_core.cli.merge:merge",
                         "Merge the datasets of runs that played different scenarios, modes or shards."),
    "bench": LazyCommand("deception_core.cli.bench:bench",
                         "Time bare generate, hf capture, transformer-lens and hybrid, at several batch sizes."),
    "report": LazyCommand("deception_core.cli.report:report",
                          "Write one self-contained HTML page of the run: labels, probes, plots, every transcript,"
                          " filters."),
    "export": LazyCommand("deception_core.cli.report:export",
                          "Write the run's samples as a table: one row per focal utterance (columns: README, 'Data"
                          " frames'). CSV cells that start with = + - @ (or a tab or carriage return) get a leading"
                          " ' so that a spreadsheet does not run them as formulas."),
    "relabel": LazyCommand("deception_core.cli.report:relabel",
                           "Judge the stored utterances again (no game is replayed), keep the old labels, re-run the"
                           " analysis."),
    "capture": LazyCommand("deception_core.cli.capture:capture",
                           "Record activations for the statements or dialogues in DATA (a .jsonl or .csv file, or the"
                           " name of a registered statement set such as `instructed_pairs`) with a plain forward pass"
                           " (nothing is generated) and write a dataset that `deception analyze` and `deception merge`"
                           " read."),
    "saes": LazyCommand("deception_core.cli.saes:saes",
                        "List residual-stream SAEs usable with --sae: release, SAE id, layer, width, L0, Neuronpedia"
                        " id."),
    "checkpoints": LazyCommand("deception_core.cli.checkpoints:checkpoints",
                               "List the experiments a --checkpoint-dir holds: area, finished trials per scenario, the"
                               " settings that differ from the defaults (re-run with them to resume that area), and"
                               " trials in flight."),
}


class _Group(click.Group):
    """Loads the core's commands lazily, adds the plugins' commands, and turns the toolkit's errors
    into a message and an exit code, never a traceback.

    The core's commands live in `CORE_COMMANDS` until first looked up, then in ``_loaded``; the
    plugins' in ``_plugin_commands``. ``commands`` (click's eager table) stays empty unless someone
    calls ``cli.add_command``, so that documentation tools (mkdocs-click) walk
    ``list_commands``/``get_command`` and see every command.

    Exit codes: 2 for bad input (`UsageError`); 1 when writing the outputs failed (disk full, no
    permission, I/O error: `WriteFailed`, or such an `OSError` from any command), or when a command
    refused to apply its result and kept the earlier one (`NotApplied`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}
        self._plugin_commands: dict[str, click.Command] | None = None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in CORE_COMMANDS:  # the core's own commands need no plugin loaded
            if cmd_name not in self._loaded:
                self._loaded[cmd_name] = CORE_COMMANDS[cmd_name].load()
            return self._loaded[cmd_name]
        if cmd_name in self.commands:  # added with `cli.add_command`
            return self.commands[cmd_name]
        return self.plugin_commands().get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*CORE_COMMANDS, *self.commands, *self.plugin_commands()})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with a core command not loaded yet summarised from `CORE_COMMANDS`
        through a stand-in that has the summary as its help (shortened by click's own rule)."""
        shown: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in CORE_COMMANDS and name not in self._loaded:
                command: click.Command | None = click.Command(name, help=CORE_COMMANDS[name].summary)
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        with formatter.section(gettext("Commands")):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in shown])

    def plugin_commands(self) -> dict[str, click.Command]:
        """The commands plugins add through ``register_commands``, collected once; one whose name is
        taken is skipped with a warning naming it."""
        if self._plugin_commands is not None:
            return self._plugin_commands
        added = click.Group(name=self.name)
        get_plugin_set().manager.hook.register_commands(cli=added)
        self._plugin_commands = {}
        for name, command in added.commands.items():
            if name in CORE_COMMANDS or name in self.commands:
                warnings.warn(f"a plugin's command {name!r} is skipped: `deception {name}` already exists",
                              PluginLoadWarning, stacklevel=2)
                continue
            self._plugin_commands[name] = command
        return self._plugin_commands

    def forget_plugin_commands(self) -> None:
        """Collect the plugins' commands again at the next lookup (after the plugin set changed)."""
        self._plugin_commands = None

    def invoke(self, ctx: click.Context) -> Any:
        # here, not at module level: outputs.policy loads numpy, which `deception --help` never needs
        from deception_core.outputs.policy import WriteFailed, describe_os_error, is_write_error

        try:
            return super().invoke(ctx)
        except UsageError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)
        except EngineFailed as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EngineFailed.exit_code)
        except NotApplied as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(NotApplied.exit_code)
        except WriteFailed as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(WriteFailed.exit_code)
        except OSError as error:
            if not is_write_error(error):
                raise
            click.echo(f"Error: {describe_os_error(error)}; nothing half-written was left", err=True)
            ctx.exit(WriteFailed.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deception-core", prog_name="deception")
def cli() -> None:
    """Mechanistic interpretability of deception in LLM agents."""


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="deception")
