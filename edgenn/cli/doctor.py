"""`edgenn doctor`: what this machine has for running models, and how to fix what it lacks."""

import json
import sys

import click

from edgenn.doctor import run_checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def doctor(as_json):
    """Check Python, TFLite runtimes, numpy, cameras, audio, Edge TPU and disk space.

    Exits 1 only when no model can run here at all; absent cameras or TPUs are reported with the fix.

    \b
    Example:
      edgenn doctor
    """
    checks = run_checks()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        for check in checks:
            mark = "ok " if check.ok else "-- "
            click.echo(f"{mark} {check.area:<18} {check.detail}")
            if not check.ok and check.fix:
                click.echo(f"    {'':<18} fix: {check.fix}")
    sys.exit(1 if any(c.required and not c.ok for c in checks) else 0)
