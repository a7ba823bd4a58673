"""The `audit` command line. Thin: parses options, calls the library, renders with rich.

Exit codes: 0 ok, 1 a --fail-above threshold was exceeded, 2 usage or input error.
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from audit import gate
from audit.config import ConfigError, load_scan_defaults

stderr = Console(stderr=True)


def _fail(message: str) -> None:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(gate.EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Options file (audit.toml, or pyproject.toml with [tool.audit]); found automatically if omitted.")
@click.version_option(package_name="autophagy-audit")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Audit image datasets for AI-generated content (scan), and simulate what it does to models."""
    if config_path is not None and not config_path.is_file():
        _fail(f"config file not found: {config_path}")
    try:
        ctx.default_map = {"scan": load_scan_defaults(config_path)}
    except ConfigError as e:
        _fail(str(e))


@main.command()
@click.argument("source")
@click.option("--out", default="audit-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for results.parquet, summary.json, report.md and the resume journal.")
@click.option("--detectors", default="metadata,watermark", show_default=True,
              help="Comma-separated detectors to run.")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Decoding/detector processes (default: CPU count, at most 8; 0 or 1 = in-process).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted scan in --out instead of starting over.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="What to print on stdout.")
@click.option("--fail-above", type=click.FloatRange(0, 1), default=None,
              help="Exit 1 when the flagged fraction exceeds this (CI gate).")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--pixel-limit", type=click.IntRange(1), default=None,
              help="Images with more pixels are refused as decompression bombs (default 100 MP).")
@click.option("--watermark-key", multiple=True,
              help="Extra watermark key NAME=bytes:TEXT, NAME=bits:0101... or NAME=hex:ABCD (repeatable).")
@click.option("--watermark-p-threshold", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Binomial p-value below which a watermark match counts (default 1e-6).")
@click.option("--column", default=None, help="Image column of a parquet or Hugging Face source.")
def scan(source, out, detectors, workers, batch_size, resume, fmt, fail_above, junit, quiet, pixel_limit,
         watermark_key, watermark_p_threshold, column):
    """Scan SOURCE for AI-generated images and estimate the synthetic fraction.

    SOURCE: a folder or image file, webdataset .tar shards (file, folder or brace/glob
    pattern), parquet files, or a Hugging Face dataset (hf:org/name[:split], hf:LOCAL_DIR).
    """
    from audit.decode import DEFAULT_PIXEL_LIMIT
    from audit.journal import JournalMismatch
    from audit.report import summary_table, write_junit
    from audit.scan import ScanConfig, scan as run_scan
    from audit.sources import SourceError

    config = ScanConfig(
        detectors=tuple(d.strip() for d in detectors.split(",") if d.strip()),
        pixel_limit=pixel_limit or DEFAULT_PIXEL_LIMIT,
        watermark_keys=tuple(watermark_key),
        watermark_p_threshold=watermark_p_threshold,
        column=column,
    )
    try:
        with _progress_bar(quiet) as advance:
            result = run_scan(source, out, config=config, workers=workers, batch_size=batch_size,
                              resume=resume, progress=advance)
    except (SourceError, ValueError, JournalMismatch, OSError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        stderr.print(f"interrupted; finished rows are kept in {out}. Continue with --resume.")
        sys.exit(130)

    checks = gate.gate_checks(result.summary, fail_above)
    if junit:
        write_junit(junit, checks)
    if fmt == "json":
        click.echo(json.dumps({**result.summary, "checks": checks}, indent=2))
    else:
        Console().print(summary_table(result.summary))
        stderr.print(f"outputs in {out}/ (results.parquet, summary.json, report.md)")
    for check in checks:
        if not check["passed"]:
            stderr.print(f"[bold red]FAILED[/] {check['name']}: {check['message']}", highlight=False)
    sys.exit(gate.exit_code(checks))


@main.command()
@click.option("--dir", "demo_dir", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Where to build the demo images and write the scan outputs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def demo(ctx, demo_dir, quiet):
    """Build the built-in demo folder (labelled real photos plus marked copies) and scan it."""
    from audit.demo import build_demo_folder

    images = build_demo_folder(Path(demo_dir) / "images")
    stderr.print(f"demo images in {images} (see DEMO_README.txt there)")
    ctx.invoke(scan, source=str(images), out=str(Path(demo_dir) / "out"), quiet=quiet)


@contextmanager
def _progress_bar(quiet: bool):
    if quiet or not stderr.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False) as progress:
        task = progress.add_task("scan", total=None, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[task]
            if t.elapsed:
                progress.update(task, rate=f"{t.completed / t.elapsed:.1f} img/s")

        yield advance


if __name__ == "__main__":
    main()
