"""`edgenn service`: run `edgenn camera` or `edgenn listen` as a systemd service on this device."""

import getpass
import importlib
import sys

import click

from edgenn.cli import COMMANDS
from edgenn.errors import EdgennError


def check_runner_args(mode, model, args):
    """Parse `edgenn MODE MODEL ARGS` with the runner's own options without running it, so an option it
    would refuse fails now instead of at every start of the service."""
    module, name = COMMANDS[mode].split(":")
    runner = getattr(importlib.import_module(module), name)
    try:
        runner.make_context(f"edgenn {mode}", [model, *args])
    except click.UsageError as exc:
        raise click.UsageError(f"the service would run `edgenn {mode}` with arguments it refuses: "
                               f"{exc.format_message()}", ctx=exc.ctx) from None
    except EdgennError as exc:
        raise EdgennError(f"the service would run `edgenn {mode}` with arguments it refuses: {exc}") from None


def offer_lingering(units):
    """A user unit starts at boot only when systemd lingers for the user: ask to enable it on a terminal,
    else print the one command that does."""
    user = getpass.getuser()
    if units.lingering(user):
        return
    command = f"loginctl enable-linger {user}"
    if sys.stdin.isatty() and click.confirm(f"lingering is off for {user}, so the service starts at boot only "
                                            f"once {user} logs in; enable it ({command})?", default=True):
        units.enable_lingering(user)
        click.echo(f"lingering enabled for {user}: the service starts at boot")
    else:
        click.echo(f"note: to start it at boot without a login, run: {command}")


@click.group()
def service():
    """Install or remove a systemd service that runs a model on this device and restarts it on failure.

    \b
    Examples:
      edgenn service install camera shapes -- --source 0 --events mqtt://broker/edgenn
      edgenn service uninstall camera shapes
    """


@service.command()
@click.argument("mode", type=click.Choice(["camera", "listen"]))
@click.argument("model")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--models-dir", default="~/.local/share/edgenn/models", show_default=True,
              help="Where flashed models live on this device.")
@click.option("--system", is_flag=True, help="A system unit in /etc/systemd/system (needs root) instead of a user unit.")
@click.option("--user", "run_as", help="Account a --system unit runs as (default: you).")
@click.option("--dry-run", is_flag=True, help="Print the unit instead of installing it.")
@click.option("--no-start", is_flag=True, help="Write and enable the unit but do not start it now.")
def install(mode, model, args, models_dir, system, run_as, dry_run, no_start):
    """Run `edgenn MODE MODEL ARGS...` as a service; MODEL is an installed model's name
    (its current version, so a new flash takes effect on restart) or a .tflite path.

    \b
    Example:
      edgenn service install listen keywords -- --source default --events /var/log/keywords.jsonl
    """
    from edgenn.bundle import write_atomic
    from edgenn.flash import service as units

    text = units.render(mode, model, args, models_dir, system, run_as)
    check_runner_args(mode, model, args)
    if dry_run:
        click.echo(text, nl=False)
        return
    name = units.unit_name(mode, model)
    path = units.unit_path(name, system)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgennError(f"{path.parent}: cannot create ({exc.strerror}); run as root for --system") from None
    write_atomic(path, text.encode())
    units.systemctl(system, "daemon-reload")
    units.systemctl(system, "enable", *([] if no_start else ["--now"]), name)
    click.echo(f"{path}: installed and {'enabled' if no_start else 'started'}; "
               f"logs: journalctl {'' if system else '--user '}-u {name}")
    if not system:
        offer_lingering(units)


@service.command()
@click.argument("mode", type=click.Choice(["camera", "listen"]))
@click.argument("model")
@click.option("--system", is_flag=True, help="Remove a system unit instead of a user unit.")
def uninstall(mode, model, system):
    """Stop and remove the service for MODE and MODEL.

    \b
    Example:
      edgenn service uninstall camera shapes
    """
    from edgenn.flash import service as units

    name = units.unit_name(mode, model)
    path = units.unit_path(name, system)
    if not path.exists():
        raise EdgennError(f"{path}: no such unit; see `systemctl {'' if system else '--user '}list-units 'edgenn-*'`")
    units.systemctl(system, "disable", "--now", name)
    path.unlink()
    units.systemctl(system, "daemon-reload")
    click.echo(f"{path}: removed")
