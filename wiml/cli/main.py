"""``wiml`` console entry point: dispatches to ``wiml.cli.<subcommand>``.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` (and, through
:func:`make_main`, a ``main(argv) -> int``). Errors raised on purpose (:class:`wiml.errors.WimlError`)
are printed as one line and exit with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from wiml.errors import WimlError

#: subcommand -> (module, one-line help). Modules are imported lazily so that ``wiml --help`` is fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "make-demo": ("wiml.cli.make_demo", "write the synthetic abdominal CT phantom (LiTS layout)"),
    "prepare": ("wiml.cli.prepare", "volumes / slice folders -> 2-D slices, image tags, manifest.csv, split"),
    "check-data": ("wiml.cli.check_data", "check a prepared folder: files, shapes, tags vs masks, split"),
    "train-weak": ("wiml.cli.train_weak", "train FPSNet on image tags only (weak checkpoint)"),
    "cam": ("wiml.cli.cam", "Grad-CAM overlays, initial masks and CAM quality"),
    "annotate": ("wiml.cli.annotate", "the WIA annotator GUI (same as python WIA/main.py)"),
    "wia-sim": ("wiml.cli.wia_sim", "robot-user WIA simulation: NoC@85/90, strong labels + records"),
    "wia-session": (
        "wiml.cli.wia_session",
        "robot annotation sessions per proposal source: none, cam, cam+, box, propagate, bootstrap",
    ),
    "train-msl": ("wiml.cli.train_msl", "mixed-supervised FPSNet training on tags + K strong labels"),
    "test": ("wiml.cli.test", "predict test patients; per-slice and per-patient metrics"),
    "export": (
        "wiml.cli.export",
        "annotator results -> nnU-Net v2 / MSD raw dataset (sparse labels ignored)",
    ),
    "baselines": ("wiml.cli.baselines", "strong-only / full / weak-only baselines and ablations"),
    "curve": ("wiml.cli.curve", "Dice vs strong labels K and annotation cost over patient folds (sweep)"),
    "report": ("wiml.cli.report", "markdown + PNG report of a run folder"),
    "doctor": ("wiml.cli.doctor", "library versions, CUDA, native extensions; says how to fix what is wrong"),
    "pipeline": (
        "wiml.cli.pipeline",
        "the whole chain: prepare -> train-weak -> cam -> WIA -> train-msl -> test",
    ),
}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand accepts: ``--debug`` and ``--quiet``."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors in the log")


def add_overrides_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add the repeatable ``--set KEY=VALUE`` option (config overrides, :func:`wiml.config.apply_overrides`);
    the values land in ``args.overrides`` (a list of str, empty by default). ``help`` says what the keys
    are, with an example."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_training_arguments(parser: argparse.ArgumentParser, set_help: str) -> None:
    """Options the training commands share: ``--device``, ``--seed``, ``--epochs`` (each overrides
    ``trainer.*`` when given, else None), ``--resume``, ``--overwrite`` (see
    :func:`guarded_training_folder`) and ``--set`` (help line ``set_help``)."""
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (overrides trainer.device)")
    parser.add_argument("--seed", type=int, default=None, help="seed (overrides trainer.seed)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (overrides trainer.epochs)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train anew into an OUT that holds a model (its best is kept as best.v1.safetensors, ...)",
    )
    add_overrides_argument(parser, set_help)


def given_overrides(flags: dict[str, object]) -> list[str]:
    """``KEY=VALUE`` config overrides for the command-line options that were given (not None), in the order
    of ``flags`` (config key -> option value); a path is made absolute (against the user's working
    directory)."""
    return [
        f"{key}={Path(value).resolve() if isinstance(value, Path) else value}"
        for key, value in flags.items()
        if value is not None
    ]


def combine_overrides(named: list[str], sets: list[str]) -> list[str]:
    """The one rule for named options (``--k 5``, ``--device cpu``) against ``--set KEY=VALUE``: both are
    applied, and a key that both set to different values is an error (neither silently wins).

    Args:
        named: ``KEY=VALUE`` overrides from named options (:func:`given_overrides`).
        sets: the ``--set`` overrides, in the order given.

    Returns:
        ``named + sets``.

    Raises:
        ConfigError: a key set by a named option and by ``--set`` to different values.
    """
    from wiml.config import split_override
    from wiml.errors import ConfigError

    by_named = dict(split_override(o) for o in named)
    for o in sets:
        key, value = split_override(o)
        if key in by_named and by_named[key] != value:
            raise ConfigError(
                f"{key} is given twice: {by_named[key]!r} by its named option and {value!r} by --set; give it once"
            )
    return list(named) + list(sets)


def trainer_overrides(args: argparse.Namespace) -> list[str]:
    """``trainer.device=...``, ``trainer.seed=...``, ``trainer.epochs=...`` overrides for the options of
    :func:`add_training_arguments` that were given."""
    return given_overrides(
        {"trainer.device": args.device, "trainer.seed": args.seed, "trainer.epochs": args.epochs}
    )


def setup_logging(debug: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


def os_error_line(exc: OSError) -> str:
    """``PATH: cause [ERRNO]`` (e.g. ``runs/x/test: Read-only file system [EROFS]``) for an ``OSError``."""
    code = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    cause = exc.strerror or str(exc) or exc.__class__.__name__
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{cause}" + (f" [{code}]" if code else "")


def run_guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Call ``run(args)``; print WIML errors and file-system errors (``OSError``) as one line, exit status 2
    (traceback with ``--debug``)."""
    setup_logging(getattr(args, "debug", False), getattr(args, "quiet", False))
    try:
        return int(run(args) or 0)
    except WimlError as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file-system failure the library did not name itself: still one line
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{prog}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def make_main(
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> Callable[[Sequence[str] | None], int]:
    """Build a ``main(argv) -> int`` for a subcommand module."""

    def main(argv: Sequence[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        add_arguments(parser)
        add_common_arguments(parser)
        args = parser.parse_args(argv)
        return run_guarded(run, args, prog)

    return main


@contextlib.contextmanager
def guarded_training_folder(out: Path, command: str, resume: bool, overwrite: bool) -> Iterator[None]:
    """Hold ``out``'s run lock and make it ready (:func:`wiml.training.folder.claim_training_folder`) while
    training; under ``torchrun`` only rank 0 does either."""
    from wiml.runlock import RunLock
    from wiml.training.folder import claim_training_folder

    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with RunLock(out, command):
        claim_training_folder(out, resume=resume, overwrite=overwrite)
        yield


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [
            "usage: wiml <subcommand> [options]   (wiml <subcommand> --help for its options)",
            "",
            "subcommands:",
        ]
        lines += [f"  {name:<11} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
        print("\n".join(lines))
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        from wiml import __version__

        print(f"wiml {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        print(
            f"wiml: error: unknown subcommand {name!r}; expected one of {', '.join(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
