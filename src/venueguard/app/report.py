"""``venueguard report JOURNAL --out DIR``: the offline outage report.

Reads the ``samples`` and ``events`` tables the monitor journals (read-only; the journal is never
modified), evaluates the failure-mode playbook on them (:mod:`venueguard.core.playbook`) and
writes into DIR:

- ``timeline.png``: 503s per minute, spread, REST latency (p50/p95/p99) and reconnects on one
  shared time axis, with the outage regime shaded behind all four;
- ``latency.png``: the distribution of REST latency with its quantiles;
- ``spread_vs_503.png``: per time bucket, 503s against the mean spread;
- ``report.html``: a summary, the plots, the eight playbook symptoms each marked seen / not seen
  with its evidence, and the notable events (alerts, venue state, regime changes, stalls).

Plots use matplotlib's Agg canvas directly (no pyplot, no display). Progress goes to stderr.
Exit codes: 0 written, 2 the journal cannot be read.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from venueguard.app.status import Progress
from venueguard.core.playbook import (
    Event,
    Finding,
    Recording,
    Sample,
    Series,
    Verdict,
    bucket_means,
    bucket_size_s,
    bucket_sums,
    evaluate,
    increments,
    percentile,
    total_increase,
)

NOTABLE_EVENTS = ("alert", "venue.state", "regime.changed", "ws.stale", "ws.disconnected",
                  "book.resynced", "book.gap", "reconcile.mismatch", "order.unknown")
_MAX_EVENT_ROWS = 300
_REGIME_COLOURS = {1: "#f2c14e", 2: "#d1495b", 3: "#5b8def"}  # CAUTIOUS, SAFE, RECOVERING
_REGIME_NAMES = {0: "NORMAL", 1: "CAUTIOUS", 2: "SAFE", 3: "RECOVERING"}


class JournalReadError(Exception):
    """The journal is missing, not SQLite, or lacks the samples/events tables."""


def _json_obj(text: object) -> dict[str, object]:
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open a journal for reading without writing anything, beside it or in it.

    A journal with no write-ahead log beside it (``-wal``; a monitor that closed cleanly folds
    it back in) is opened ``immutable``: SQLite then creates no ``-wal``/``-shm`` files and
    takes no locks, so this works on a read-only filesystem too. With a ``-wal`` present (a
    monitor is running, or was killed), the log holds the newest rows and is read through
    SQLite's read-only mode, which uses the ``-shm`` beside it.
    """
    if not path.exists():
        raise JournalReadError(f"{path}: no such journal file")
    if not path.is_file():
        raise JournalReadError(f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise JournalReadError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if header != b"SQLite format 3\x00":
        raise JournalReadError(f"{path}: not a venueguard journal (not an SQLite database)")
    wal = path.with_name(path.name + "-wal")
    live = wal.exists() and wal.stat().st_size > 0
    uri = path.resolve().as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")
    try:
        db = sqlite3.connect(uri, uri=True)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise JournalReadError(_open_problem(path, exc, live)) from exc
    return db


def _open_problem(path: Path, exc: sqlite3.Error, live: bool) -> str:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")) and live:
        return (f"{path}: cannot read its write-ahead log ({path.name}-wal) without write "
                f"access to {path.parent} (a monitor is running on it, or was killed): copy "
                f"the journal and its -wal file to a writable directory ({exc})")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return f"{path}: damaged journal file ({exc})"
    return f"{path}: cannot open it read-only ({exc})"


def load_recording(path: Path) -> Recording:
    """Read samples and events from a journal file (read-only) into a :class:`Recording`."""
    db = open_read_only(path)
    try:
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"samples", "events"} - tables
        if missing:
            raise JournalReadError(f"{path}: not a venueguard journal (an SQLite database "
                                   f"without the {' and '.join(sorted(missing))} table(s))")
        samples = [
            Sample(ts_ms / 1000.0, str(kind), str(name), float(value),
                   {str(k): str(v) for k, v in _json_obj(labels).items()})
            for ts_ms, kind, name, value, labels in db.execute(
                "SELECT ts_ms, kind, name, value, labels FROM samples ORDER BY ts_ms")
            if isinstance(ts_ms, int | float) and isinstance(value, int | float)
        ]
        events = [
            Event(ts_ms / 1000.0, str(event), _json_obj(fields))
            for ts_ms, event, fields in db.execute(
                "SELECT ts_ms, event, fields FROM events ORDER BY ts_ms")
            if isinstance(ts_ms, int | float)
        ]
    except sqlite3.Error as exc:
        raise JournalReadError(f"{path}: cannot read the journal ({exc})") from exc
    finally:
        db.close()
    return Recording(samples, events)


# -- plots ----------------------------------------------------------------------------------
def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _days(ts: float) -> float:
    """Matplotlib's date number (days since its default 1970 epoch) for epoch seconds."""
    return ts / 86_400.0


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} recorded", transform=ax.transAxes, ha="center", va="center",
            color="#888888")


def _counts_from_zero(ax: Axes, values: Sequence[float], what: str) -> None:
    """A count or a duration never goes below 0: the axis starts there, and a series that is
    all zero says so instead of a flat line inside an axis from -0.05 to 0.05."""
    if not values or max(values) <= 0:
        ax.set_ylim(0, 1)
        if values:
            ax.text(0.5, 0.5, f"no {what} in this run", transform=ax.transAxes, ha="center",
                    va="center", color="#888888")
    else:
        ax.set_ylim(bottom=0)


def _shade_regimes(axes: Sequence[Axes], rec: Recording) -> None:
    points = rec.series(Series.REGIME)
    spans: list[tuple[float, float, int]] = []
    for i, (ts, code) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else ts + 1.0
        c = int(code)
        if c in _REGIME_COLOURS:
            if spans and spans[-1][2] == c and spans[-1][1] >= ts:
                spans[-1] = (spans[-1][0], end, c)
            else:
                spans.append((ts, end, c))
    for ax in axes:
        for start, end, c in spans:
            ax.axvspan(_days(start), _days(end), color=_REGIME_COLOURS[c], alpha=0.15,
                       linewidth=0)


def plot_timeline(rec: Recording, bucket_s: float, path: Path) -> None:
    """503s per minute, spread, latency quantiles and reconnects on one shared time axis."""
    timeline_figure(rec, bucket_s).savefig(path, dpi=100)


def timeline_figure(rec: Recording, bucket_s: float) -> Figure:
    """The figure of :func:`plot_timeline`."""
    fig = Figure(figsize=(11.0, 9.5), layout="constrained")
    ax503, axspread, axlat, axrec = fig.subplots(4, 1, sharex=True)
    width_days = bucket_s / 86_400.0 * 0.9
    start = rec.start_ts

    errs = bucket_sums(increments(rec.series(Series.HTTP_503_TOTAL)), start, bucket_s)
    if errs:
        xs = [_dt(start + (i + 0.5) * bucket_s) for i in sorted(errs)]
        ax503.bar(xs, [errs[i] * 60.0 / bucket_s for i in sorted(errs)], width=width_days,
                  color="#d1495b")
        _counts_from_zero(ax503, list(errs.values()), "503s")
    else:
        _no_data(ax503, "503 counter")
    ax503.set_ylabel("HTTP 503 / min")
    ax503.set_title(f"Outage timeline (UTC; buckets of {bucket_s:g} s; shading: regime "
                    "CAUTIOUS yellow, SAFE red, RECOVERING blue)", fontsize=10)

    spread = rec.series(Series.SPREAD)
    if spread:
        axspread.plot([_dt(t) for t, _ in spread], [v for _, v in spread], color="#2e86ab",
                      linewidth=0.9)
        _counts_from_zero(axspread, [v for _, v in spread], "spread")
    else:
        _no_data(axspread, "spread")
    axspread.set_ylabel("spread")

    lat = rec.series(Series.LATENCY_MS)
    if lat:
        per_bucket: dict[int, list[float]] = {}
        for t, v in lat:
            per_bucket.setdefault(int((t - start) // bucket_s), []).append(v)
        idx = sorted(per_bucket)
        xs = [_dt(start + (i + 0.5) * bucket_s) for i in idx]
        axlat.scatter([_dt(t) for t, _ in lat], [v for _, v in lat], s=4, color="#bbbbbb",
                      label="requests")
        for q, colour in ((50, "#3b7d3b"), (95, "#e09f3e"), (99, "#9e2a2b")):
            axlat.plot(xs, [percentile(per_bucket[i], q) for i in idx], color=colour,
                       linewidth=1.2, marker=".", label=f"p{q}")
        axlat.legend(loc="upper left", fontsize=8, ncols=4)
        _counts_from_zero(axlat, [v for _, v in lat], "latency")
    else:
        _no_data(axlat, "latency")
    axlat.set_ylabel("REST latency (ms)")

    rec_counts = bucket_sums(increments(rec.series(Series.RECONNECTS_TOTAL)), start, bucket_s)
    if rec_counts:
        idx = sorted(rec_counts)
        axrec.bar([_dt(start + (i + 0.5) * bucket_s) for i in idx], [rec_counts[i] for i in idx],
                  width=width_days, color="#6a4c93")
        _counts_from_zero(axrec, list(rec_counts.values()), "reconnects")
    else:
        _no_data(axrec, "reconnect counter")
    for e in rec.named("ws.stale"):
        axrec.axvline(_dt(e.ts), color="#d1495b", linestyle="--", linewidth=0.8)
    axrec.set_ylabel("reconnects")
    axrec.set_xlabel("time (UTC); dashed: stale stream detected")
    if rec.duration_s > 0:  # up to the end of the last bucket, so its bar is not cut
        buckets = math.ceil(rec.duration_s / bucket_s + 1e-9)
        axrec.set_xlim(_dt(rec.start_ts), _dt(max(rec.end_ts, start + buckets * bucket_s)))
    _shade_regimes((ax503, axspread, axlat, axrec), rec)
    return fig


def plot_latency(rec: Recording, path: Path) -> None:
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    values = [v for _, v in rec.series(Series.LATENCY_MS)]
    if values:
        ax.hist(values, bins=min(60, max(10, len(values) // 5)), color="#2e86ab")
        for q, colour in ((50, "#3b7d3b"), (95, "#e09f3e"), (99, "#9e2a2b")):
            x = percentile(values, q)
            ax.axvline(x, color=colour, linestyle="--", label=f"p{q} {x:.0f} ms")
        ax.legend(fontsize=8)
    else:
        _no_data(ax, "latency")
    ax.set_xlabel("REST latency (ms)")
    ax.set_ylabel("requests")
    ax.set_title("REST latency distribution", fontsize=10)
    fig.savefig(path, dpi=100)


def plot_spread_vs_503(rec: Recording, bucket_s: float, path: Path) -> None:
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    errs = bucket_sums(increments(rec.series(Series.HTTP_503_TOTAL)), rec.start_ts, bucket_s)
    means = bucket_means(rec.series(Series.SPREAD), rec.start_ts, bucket_s)
    if means:
        idx = sorted(means)
        ax.scatter([errs.get(i, 0.0) for i in idx], [means[i] for i in idx], color="#d1495b")
        ax.set_xlim(left=0, right=max([1.0, *errs.values()]) * 1.05)  # counts: from 0
        ax.set_ylim(bottom=0)
    else:
        _no_data(ax, "spread")
    ax.set_xlabel(f"HTTP 503 per {bucket_s:g} s bucket")
    ax.set_ylabel("mean spread")
    ax.set_title("Does the spread widen when the venue sheds load?", fontsize=10)
    fig.savefig(path, dpi=100)


# -- HTML -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    images: tuple[Path, ...]
    findings: tuple[Finding, ...]


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1150px;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f4f4f4} .seen{background:#fbe3e4;font-weight:600}
.not-seen{background:#e6f4ea} .no-data{background:#f0f0f0;color:#666}
img{max-width:100%;border:1px solid #eee} code{font-size:.85rem}
"""


def _fmt_num(x: float, unit: str = "") -> str:
    return "-" if math.isnan(x) else f"{x:,.0f}{unit}"


def _summary_rows(rec: Recording) -> list[tuple[str, str]]:
    lat = [v for _, v in rec.series(Series.LATENCY_MS)]
    produced = total_increase(rec.series(Series.SNAPSHOTS_TOTAL))
    missing = total_increase(rec.series(Series.SNAPSHOTS_MISSING_TOTAL))
    slots = produced + missing
    span = (f"{_dt(rec.start_ts):%Y-%m-%d %H:%M:%S} to {_dt(rec.end_ts):%Y-%m-%d %H:%M:%S} UTC"
            if rec.duration_s > 0 else "-")
    return [
        ("recorded", span),
        ("duration", f"{rec.duration_s:,.0f} s"),
        ("REST requests", _fmt_num(total_increase(rec.series(Series.REQUESTS_TOTAL)))),
        ("HTTP 503", _fmt_num(total_increase(rec.series(Series.HTTP_503_TOTAL)))),
        ("failed requests", _fmt_num(total_increase(rec.series(Series.ERRORS_TOTAL)))),
        ("retries", _fmt_num(total_increase(rec.series(Series.RETRIES_TOTAL)))),
        ("REST latency p50 / p95 / p99",
         " / ".join(_fmt_num(percentile(lat, q), " ms") for q in (50, 95, 99))),
        ("websocket reconnects", _fmt_num(total_increase(rec.series(Series.RECONNECTS_TOTAL)))),
        ("stale streams detected", str(len(rec.named("ws.stale")))),
        ("snapshots taken / missing",
         f"{produced:,.0f} / {missing:,.0f} ({missing / slots:.1%})" if slots else "-"),
        ("alerts", str(len(rec.named("alert")))),
    ]


def render_html(rec: Recording, findings: Sequence[Finding], images: Sequence[Path],
                source: str) -> str:
    esc = html.escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>venueguard outage report: {esc(source)}</title><style>{_CSS}</style>",
           "</head><body>", "<h1>venueguard outage report</h1>",
           f"<p>Journal <code>{esc(source)}</code>.</p>", "<h2>Summary</h2><table>"]
    out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary_rows(rec)]
    out.append("</table>")
    if images:
        out.append("<h2>Timeline</h2>")
        out.append(f"<img src='{esc(images[0].name)}' alt='503s per minute, spread, latency and "
                   "reconnects on one time axis'>")
    seen = sum(f.verdict is Verdict.SEEN for f in findings)
    out.append(f"<h2>Failure-mode playbook</h2><p>{seen} of {len(findings)} symptoms seen in "
               "this recording.</p>")
    out.append("<table id='playbook'><tr><th>#</th><th>symptom</th><th>verdict</th>"
               "<th>evidence</th><th>likely cause</th><th>first check</th></tr>")
    for n, f in enumerate(findings, 1):
        css = f.verdict.name.lower().replace("_", "-")
        verdict = {"SEEN": "seen", "NOT_SEEN": "not seen",
                   "NO_DATA": "not seen (no data)"}[f.verdict.name]
        if f.first_seen_ts is not None:
            verdict += f"<br><small>first at {_dt(f.first_seen_ts):%H:%M:%S} UTC</small>"
        evidence = "<br>".join(esc(e) for e in f.evidence)
        out.append(f"<tr data-symptom='{esc(f.symptom.key)}'><td>{n}</td>"
                   f"<td>{esc(f.symptom.symptom)}</td><td class='{css}'>{verdict}</td>"
                   f"<td>{evidence}</td><td>{esc(f.symptom.likely_cause)}</td>"
                   f"<td>{esc(f.symptom.first_check)}</td></tr>")
    out.append("</table>")
    for image in images[1:]:
        out.append(f"<p><img src='{esc(image.name)}' alt='{esc(image.stem)}'></p>")
    notable = [e for e in rec.events if e.event in NOTABLE_EVENTS]
    listed = f"; the first {_MAX_EVENT_ROWS} are listed" if len(notable) > _MAX_EVENT_ROWS else ""
    out.append(f"<h2>Notable events</h2><p>{len(notable)} in all{listed}.</p>"
               "<table><tr><th>time (UTC)</th><th>event</th><th>fields</th></tr>")
    for e in notable[:_MAX_EVENT_ROWS]:
        fields = ", ".join(f"{k}={v}" for k, v in e.fields.items())
        out.append(f"<tr><td>{_dt(e.ts):%H:%M:%S.%f}</td><td>{esc(e.event)}</td>"
                   f"<td>{esc(fields[:400])}</td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def build_report(rec: Recording, out_dir: Path, *, source: str,
                 progress: Progress | None = None) -> ReportFiles:
    """Write the plots and ``report.html`` for ``rec`` into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bucket_s = bucket_size_s(rec.duration_s)
    if progress:
        progress.step("evaluating the playbook")
    findings = tuple(evaluate(rec))
    images = (out_dir / "timeline.png", out_dir / "latency.png", out_dir / "spread_vs_503.png")
    if progress:
        progress.step("plotting the timeline")
    plot_timeline(rec, bucket_s, images[0])
    if progress:
        progress.step("plotting latency and spread")
    plot_latency(rec, images[1])
    plot_spread_vs_503(rec, bucket_s, images[2])
    if progress:
        progress.step("writing report.html")
    page = out_dir / "report.html"
    page.write_text(render_html(rec, findings, images, source), encoding="utf-8")
    return ReportFiles(page, images, findings)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``venueguard report JOURNAL --out DIR``."""
    progress = Progress(sys.stderr, "report", total=5)
    path = Path(args.journal)
    progress.step(f"reading {path}")
    try:
        rec = load_recording(path)
    except JournalReadError as exc:
        print(f"venueguard report: {exc}", file=sys.stderr)
        return 2
    try:
        files = build_report(rec, Path(args.out), source=str(path), progress=progress)
    except OSError as exc:
        print(f"venueguard report: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 2
    seen = sum(f.verdict is Verdict.SEEN for f in files.findings)
    progress.done(f"wrote {files.html} ({seen} of {len(files.findings)} symptoms seen)")
    return 0
