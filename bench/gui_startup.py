"""How soon does the annotator's window appear, and when is a volume loaded? (issue 10 item 3d)

Starts ``WIA/main.py IMAGE`` the way a user does (a fresh Python process, offscreen), with a hook that
reports, in seconds since the process started: the first window (a splash shown before the libraries load),
the annotator window shown, the image drawn (volume read, slice shown) and the worker idle (checkpoint
loaded, refinement warmed up). ``--write-docs`` puts the table in docs/benchmarks.md with the load. Repeats ``--repeats`` times; prints medians.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python bench/gui_startup.py ../shared/data/ircadb_patient1/PATIENT_DICOM \\
        [--checkpoint runs/demo/weak/best.safetensors] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from wiml.layout import PROJECT_ROOT

_CHILD = r"""
import json, sys, time
T0 = float(sys.argv[1])
out = {}
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication
import wiml.gui.app as app_module
create = app_module.create_window
splash = app_module.show_splash

def show_splash():
    window = splash()
    out["splash_s"] = time.time() - T0
    return window

app_module.show_splash = show_splash

def create_window(args):
    window = create(args)
    out["window_s"] = time.time() - T0 if window.isVisible() else None
    def poll():
        if "image_s" not in out and window.snapshot.raw is not None:
            out["image_s"] = time.time() - T0
        if "image_s" in out and window.worker.pending == 0:
            out["idle_s"] = time.time() - T0
            print("RESULT " + json.dumps(out), flush=True)
            window.ask_to_save = False
            window.close()
            QApplication.instance().quit()
    timer = QTimer(window, interval=10)
    timer.timeout.connect(poll)
    timer.start()
    return window

app_module.create_window = create_window
from wiml.cli.annotate import main
sys.exit(main(sys.argv[2:]))
"""


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchdoc import shown_path, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(PROJECT_ROOT)}
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-c", _CHILD, "__T0__", str(args.image), "--result-dir", tmp]
            cmd += ["--checkpoint", str(args.checkpoint)] if args.checkpoint else ["--checkpoint", "none"]
            import time

            cmd[3] = repr(time.time())
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                return 1
            rows.append(json.loads(line[len("RESULT ") :]))
    load_before = os.getloadavg()[0]
    lines = []
    for key, what in (
        ("splash_s", "first window (splash)"),
        ("window_s", "annotator window shown"),
        ("image_s", "image drawn"),
        ("idle_s", "ready (checkpoint, warm-up)"),
    ):
        values = [r[key] for r in rows if r.get(key) is not None]
        lines.append(f"| {what} | {np.median(values):.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    text = "\n".join(
        [
            f"Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/gui_startup.py {shown_path(args.image)} --repeats "
            f"{args.repeats}"
            + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "")
            + " --write-docs`"
            + ("" if args.checkpoint else " (no checkpoint)"),
            "",
            f"Seconds from the process start (a fresh Python, offscreen); load average (1 min) {load_before:.2f} "
            f"at the start on {os.cpu_count()} cores shared with other jobs.",
            "",
            "| event | median | runs |",
            "|---|---|---|",
            *lines,
        ]
    )
    print(text)
    if args.write_docs:
        write_section(
            PROJECT_ROOT / "docs" / "benchmarks.md", "Annotator start-up (bench/gui_startup.py)", text
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
