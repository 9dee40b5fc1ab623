"""The `edgenn` command. Each subcommand lives in its own module and is imported only when run,
so `edgenn --help` stays fast on a Pi and a host-only dependency never loads on a device."""

import importlib
import importlib.util
import sys

import click

from edgenn import __version__
from edgenn.errors import EdgennError

# command name -> "module:function"; modules are imported on first use.
COMMANDS = {
    "convert": "edgenn.cli.convert:convert",
    "inspect": "edgenn.cli.inspect:inspect",
    "bench": "edgenn.cli.bench:bench",
    "camera": "edgenn.cli.camera:camera",
    "listen": "edgenn.cli.listen:listen",
    "flash": "edgenn.cli.flash:flash",
    "rollback": "edgenn.cli.flash:rollback",
    "models": "edgenn.cli.flash:models",
    "service": "edgenn.cli.service:service",
    "doctor": "edgenn.cli.doctor:doctor",
    "demo": "edgenn.cli.demo:demo",
}

SHORT_HELP = {
    "convert": "Quantize a Keras model into a .tflite bundle.",
    "inspect": "Show a model's tensors, ops, manifest and labels.",
    "bench": "Measure a model's latency and memory.",
    "camera": "Run a CNN on live camera frames.",
    "listen": "Run a speech-command model on live audio.",
    "flash": "Install a bundle on devices over SSH.",
    "rollback": "Switch a device back to the previous model version.",
    "models": "List the models installed on a device.",
    "service": "Run edgenn as a systemd service on this device.",
    "doctor": "Check this machine for runtimes, cameras, audio and Edge TPUs.",
    "demo": "Run the demo models on a sample video and WAV (no TensorFlow needed).",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name):
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgenn")
def cli():
    """edgenn: take a trained Keras model to a Raspberry Pi or Coral board and run it on live input.

    \b
    Example:
      edgenn inspect model.tflite
    """


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="edgenn", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("edgenn: interrupted", err=True)
        sys.exit(130)
    except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:  # click >= 8.2: `edgenn` alone shows help
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line like every other error, instead of click's usage block; the command's --help has the rest.
        command = exc.ctx.command_path if exc.ctx else "edgenn"
        click.echo(f"edgenn: error: {exc.format_message().rstrip('.')}; see `{command} --help`", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"edgenn: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except EdgennError as exc:
        click.echo(f"edgenn: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("edgenn: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
