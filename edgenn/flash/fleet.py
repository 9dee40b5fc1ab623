"""Flash or list many targets at once: one thread per device, each with its own connection, so one
device's failure never affects another; results come back in the order targets were given."""

from concurrent.futures import ThreadPoolExecutor

from edgenn.errors import EdgennError
from edgenn.flash.actions import flash_one, models as list_models
from edgenn.flash.ssh import SshOptions


def flash(artifact, targets, ssh_options=SshOptions(), keep=3, quiet=False, jobs=8):
    """Results (actions.Result) of flashing ARTIFACT to every target."""
    if len(targets) == 1:
        return [flash_one(artifact, targets[0], ssh_options, keep, quiet)]
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(targets)))) as pool:
        futures = [pool.submit(flash_one, artifact, target, ssh_options, keep, quiet, position)
                   for position, target in enumerate(targets)]
        return [future.result() for future in futures]


def table(results):
    """A plain-text table: one row per device."""
    rows = [("TARGET", "STATUS", "MODEL", "VERSION", "WAS", "TIME", "DETAIL")]
    for r in results:
        rows.append((r.target, "ok" if r.ok else "FAILED", r.name or "-", r.version or "-",
                     r.previous or "-", f"{r.seconds:.1f}s", r.message))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


def models(targets, ssh_options=SshOptions(), jobs=8):
    """[(target, installed models or None, error message or None)] in the order targets were given;
    devices are asked in parallel and one that does not answer never stops the others."""
    def ask(target):
        try:
            return target, list_models(target, ssh_options), None
        except EdgennError as exc:
            return target, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(targets)))) as pool:
        return list(pool.map(ask, targets))
