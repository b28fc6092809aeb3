"""``manage.py sandbox_check``: can this machine evaluate models, and how well contained is the sandbox?"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evaluator import sandbox
from evaluator.config import evaluator_settings

# Runs inside the sandbox: what an untrusted run could see or do.
PROBE = """
import json, os, socket, time
started = time.monotonic()
report = {"environment": sorted(os.environ)}
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=2)
    report["network"] = "reachable"
except OSError:
    report["network"] = "blocked"
report["settings_visible"] = os.path.exists(%(settings)r)
report["writable_outside_scratch"] = None
# The system, the code, and bubblewrap's own root and /dev (tmpfs with no size cap, which a run that is not mapped
# to nobody could fill); only /scratch and /tmp are meant to be writable.
for target in ("/usr/pitlane-probe", "/app/sim/pitlane-probe", "/pitlane-probe", "/app/pitlane-probe",
               "/dev/shm/pitlane-probe", "/dev/pitlane-probe"):
    try:
        open(target, "w").close()
    except OSError:
        continue
    os.remove(target)  # an uncontained run (the fallback) wrote on the host: leave nothing behind
    report["writable_outside_scratch"] = target
    break
import onnxruntime, sim.race.evaluation  # the runner's imports
report["import_s"] = round(time.monotonic() - started, 2)
print(json.dumps(report))
"""


class Command(BaseCommand):
    help = "Check that the evaluation sandbox runs here and contains a run (network, secrets, files)."

    def handle(self, *args, **options) -> None:
        allow_fallback = evaluator_settings().sandbox_allow_fallback
        try:
            mode = sandbox.sandbox_mode(allow_fallback)
        except sandbox.SandboxUnavailable as error:
            raise CommandError(str(error)) from None
        code = PROBE % {"settings": str(Path(settings.BASE_DIR) / "league" / "settings.py")}
        with tempfile.TemporaryDirectory(prefix="pitlane-sandbox-check-") as scratch:
            outcome = sandbox.run_sandboxed(["-c", code], b"", Path(scratch) / "model", Path(scratch) / "work",
                                            sandbox.SandboxLimits(wall_seconds=60), allow_fallback)
        if outcome.returncode != 0:
            raise CommandError(f"the sandbox probe failed ({outcome.signal_name or outcome.returncode}): "
                               f"{outcome.stderr.decode('utf-8', 'replace')[-2000:]}")
        report = json.loads(outcome.stdout)
        leaks = [name for name in report["environment"] if "SECRET" in name or "DATABASE" in name]
        contained = (report["network"] == "blocked" and not report["settings_visible"]
                     and not report["writable_outside_scratch"] and not leaks)
        rows = [
            ("sandbox mode", mode),
            ("network", report["network"]),
            ("settings file visible", report["settings_visible"]),
            ("writable outside scratch", report["writable_outside_scratch"] or "no"),
            ("environment", ", ".join(report["environment"])),
            ("ONNX Runtime + simulator import", f"{report['import_s']:.2f} s"),
        ]
        for label, value in rows:
            self.stdout.write(f"{label + ':':<27}{value}")
        if mode == "fallback" or not contained:
            self.stdout.write(self.style.WARNING("NOT CONTAINED: untrusted models can reach what is listed above"))
        else:
            self.stdout.write(self.style.SUCCESS("contained: evaluations run in bubblewrap"))
