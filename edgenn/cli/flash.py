"""`edgenn flash`, `edgenn rollback` and `edgenn models`: put bundles on devices and manage them."""

import dataclasses
import datetime
import functools
import json

import click

from edgenn.errors import EdgennError

REMOTE_DIR_HELP = "Models folder on the device (default ~/.local/share/edgenn/models)."


def connection_options(command):
    """Options every command that reaches devices shares."""
    options = [
        click.option("--inventory", "-i", type=click.Path(dir_okay=False),
                     help="Inventory TOML naming devices and groups (default $EDGENN_INVENTORY, "
                          "./edgenn-inventory.toml, ~/.config/edgenn/inventory.toml)."),
        click.option("--ssh-config", type=click.Path(dir_okay=False), help="ssh config file (default ~/.ssh/config)."),
        click.option("--known-hosts", type=click.Path(dir_okay=False),
                     help="known_hosts file (default: the ssh config's, else ~/.ssh/known_hosts)."),
        click.option("--accept-new-host", is_flag=True,
                     help="Record the key of a host never seen before instead of refusing it."),
        click.option("--remote-dir", help=REMOTE_DIR_HELP),
        click.option("--timeout", type=click.FloatRange(min=1), default=15, show_default=True,
                     help="Seconds to wait for a device to answer."),
    ]
    return functools.reduce(lambda cmd, option: option(cmd), reversed(options), command)


def _setup(targets, inventory, ssh_config, known_hosts, accept_new_host, remote_dir, timeout, profile=None):
    from edgenn.flash import inventory as inventory_module
    from edgenn.flash import profiles
    from edgenn.flash.ssh import SshOptions
    from edgenn.flash.targets import resolve

    if profile:
        profile = profiles.get(profile).name
    found = resolve(targets, inventory or inventory_module.default_path(), profile, remote_dir)
    if not found:
        raise EdgennError(f"{' '.join(targets)}: names no device; check the inventory's groups")
    return found, SshOptions(ssh_config, known_hosts, accept_new_host, timeout)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("targets", nargs=-1, required=True)
@click.option("--keep", type=click.IntRange(min=1), default=3, show_default=True,
              help="Versions of the model kept on each device (the current one always stays).")
@click.option("--format", "fmt", type=click.Choice(["bundle", "c"]), default="bundle", show_default=True,
              help="bundle: install the .tflite; c: write a C/C++ array (.cc/.h) into a local folder.")
@click.option("--profile", help="Device profile for fit warnings (rpi4, rpi5, rpi-zero2w, rpi-coral-usb, "
                                "coral-devboard); overrides the inventory's.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=8, show_default=True,
              help="Devices flashed at the same time.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@connection_options
def flash(model, targets, keep, fmt, profile, jobs, quiet, as_json, **connection):
    """Install MODEL on each TARGET: user@host[:port], an inventory device or group, or a local folder
    (an SD card or a mounted image's models folder).

    The file is uploaded under a temporary name, its sha256 checked on the device, renamed to
    NAME/VERSION/ and made `current` atomically; older versions beyond --keep are removed.

    \b
    Examples:
      edgenn flash shapes.tflite pi@192.168.1.20
      edgenn flash shapes.tflite cameras --inventory fleet.toml
      edgenn flash shapes.tflite ./firmware/src --format c
    """
    from edgenn.flash import artifact as artifact_module

    artifact = artifact_module.load(model)
    found, ssh_options = _setup(targets, profile=profile, **connection)
    if fmt == "c":
        _write_c(artifact, found)
        return

    from edgenn.flash.fleet import flash as flash_all, table

    results = flash_all(artifact, found, ssh_options, keep, quiet, jobs)
    for result in results:
        for warning in result.warnings:
            click.echo(f"edgenn: warning: {warning}", err=True)
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    elif len(results) == 1 and results[0].ok:
        r = results[0]
        was = f" (was {r.previous})" if r.previous and r.previous != r.version else ""
        click.echo(f"{r.target}: {r.name} {r.version} is current{was}; {r.message} in {r.seconds:.1f}s")
    elif len(results) > 1:
        click.echo(table(results))
    if len(results) == 1 and failed:
        raise EdgennError(failed[0].message)
    if failed:
        raise EdgennError(f"{len(failed)} of {len(results)} devices failed: "
                          f"{', '.join(r.target for r in failed)}; see the table above and flash them again")


def _write_c(artifact, found):
    from edgenn.flash import c_array

    for target in found:
        if target.kind != "local":
            raise EdgennError(f"{target.label}: --format c writes into a local folder, not to a device")
        for path in c_array.write(artifact, target.path):
            click.echo(str(path))


@click.command()
@click.argument("target")
@click.argument("name", required=False)
@click.option("--to", "version", help="Version to switch to (default: the one installed before the current).")
@connection_options
def rollback(target, name, version, **connection):
    """Switch TARGET's model NAME back to the version installed before the current one.

    NAME may be left out when the device has a single model.

    \b
    Examples:
      edgenn rollback pi@192.168.1.20 shapes
      edgenn rollback cameras shapes --to 1.2 --inventory fleet.toml
    """
    from edgenn.flash.actions import rollback as rollback_one

    found, ssh_options = _setup([target], **connection)
    failures = 0
    for device in found:
        try:
            model, old, new = rollback_one(device, name, version, ssh_options)
            click.echo(f"{device.label}: {model} {old or '-'} -> {new}")
        except EdgennError as exc:
            if len(found) == 1:
                raise
            failures += 1
            click.echo(f"{device.label}: FAILED: {exc}")
    if failures:
        raise EdgennError(f"{failures} of {len(found)} devices failed to roll back; see above")


@click.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@connection_options
def models(target, as_json, **connection):
    """List the models installed on TARGET: name, version, sha256 and which version is active.

    \b
    Example:
      edgenn models pi@192.168.1.20
    """
    from edgenn.flash.fleet import models as list_all

    found, ssh_options = _setup([target], **connection)
    rows, failed = [], []
    for device, installed, error in list_all(found, ssh_options):
        if error and len(found) == 1:
            raise EdgennError(error)
        if error:
            failed.append({"target": device.label, "error": error})
        else:
            rows.extend({"target": device.label, **dataclasses.asdict(item)} for item in installed)
    if as_json:
        click.echo(json.dumps(rows + failed, indent=2))
    else:
        _print_models(rows, failed)
    if failed:
        raise EdgennError(f"{len(failed)} of {len(found)} devices could not be listed: "
                          f"{', '.join(f['target'] for f in failed)}; see above")


def _print_models(rows, failed):
    if not rows and not failed:
        click.echo("no models installed")
    for row in rows:
        when = datetime.datetime.fromtimestamp(row["installed"]).strftime("%Y-%m-%d %H:%M") if row["installed"] else "?"
        click.echo(f"{'*' if row['active'] else ' '} {row['target']}  {row['name']}  {row['version']}  "
                   f"{row['sha256'] or '(not installed by edgenn)'}  {when}")
    for failure in failed:
        click.echo(f"  {failure['target']}  FAILED: {failure['error']}")
