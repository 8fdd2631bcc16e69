"""docs/benchmarks.md is shared by the bench scripts: each one replaces only its own ``## `` section."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section ``## heading`` of ``path`` (up to the next ``## ``) by ``body``, or append it.

    Args:
        path: the markdown file (created with a ``# Benchmarks`` title when missing).
        heading: the section's heading line without ``## ``.
        body: the section's text after the heading.
    """
    from wiml.utils import atomic_write_text

    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    lines = text.rstrip("\n").split("\n")
    section = [f"## {heading}", "", *body.strip("\n").split("\n"), ""]
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {heading}"), None)
    if start is None:
        lines += ["", *section]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")


def shown_path(path: Path) -> str:
    """A data path as a reader reruns it: ``.../shared/data/x`` -> ``../shared/data/x``."""
    text = str(path).rstrip("/")
    if text.endswith("/shared/data"):
        return "../shared/data"
    return "../shared/data/" + text.split("/shared/data/", 1)[1] if "/shared/data/" in text else text
