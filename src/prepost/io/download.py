"""Fetch GEO files (series matrices, supplementary tables, platform annotations) robustly.

Why this module exists: NCBI GEO is the only source of the inputs, and it fails in ways that a
plain ``urlretrieve`` turns into silent garbage downstream: 5xx bursts, connections cut mid-body,
and, for scripted clients, an HTML "challenge" page served with status 200 where a ``.gz`` was
expected. Every byte therefore goes to ``<dest>.part``, is hashed while streaming, validated
(gzip decompresses to the end; no HTML where data is expected) and only then renamed onto
``dest``. A failure removes the ``.part`` and leaves ``dest`` as it was.

The base URL may be an http(s) GEO mirror or a local folder laid out like GEO (the demo run
uses ``resources/demo/geo``); local files go through the same checks. ``offline=True`` never
touches the network, so a cache filled by hand (e.g. from a browser) can be used as is.

Retries are a plain loop here (no urllib3 ``Retry`` magic on the session) so the policy is
visible and testable: 5xx, 408/429, connection errors, timeouts and bodies cut short are retried
with exponential backoff ``backoff * 2**attempt``; other 4xx, HTML pages and corrupt files with
a verified length are not (repeating the request would give the same answer).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import urlencode

import requests
import urllib3

from prepost import __version__
from prepost.files import read_records, read_tsv, write_records, write_tsv

if TYPE_CHECKING:  # imported where a manifest is a frame (fetch_all): the one-file download
    import pandas as pd  # and manifest jobs write and read records without it (0.4 s a job)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://ftp.ncbi.nlm.nih.gov/geo"
# GEO's download endpoint for the NCBI-generated RNA-seq counts (query-string URLs, not a tree).
DEFAULT_NCBI_DOWNLOAD_URL = "https://www.ncbi.nlm.nih.gov/geo/download/"
NCBI_PREFIX = "rnaseq_counts/"  # relpaths served by that endpoint (and a local mirror's folder)
NCBI_ANNOT_FILE = "Human.GRCh38.p13.annot.tsv.gz"
USER_AGENT = (
    f"prepost/{__version__} (paired pre/post-treatment GEO workflow; "
    f"python-requests/{requests.__version__})"
)
MANIFEST_COLUMNS = ["file", "url", "bytes", "sha256", "date", "status"]
EXPECT = ("gzip", "text")

_CHUNK = 1 << 16
_HEAD = 1024  # bytes inspected for HTML / gzip magic
_GZIP_MAGIC = b"\x1f\x8b"
_ACC_RE = re.compile(r"^(GSE|GPL|GSM|GDS)(\d+)$")
_RETRY_STATUS = {408, 429}  # 4xx that mean "try again later", not "no such file"
_MAX_RETRY_AFTER = 60.0

# Tests may monkeypatch this to observe or skip the backoff sleeps.
_sleep = time.sleep


class DownloadError(RuntimeError):
    """A file could not be obtained or failed validation; the message says how to fix it."""


class NotFoundError(DownloadError):
    """The server (404/410) or the local mirror has no such file."""


class _Transient(Exception):
    """Internal: this attempt failed in a way that a retry may cure."""

    def __init__(self, msg: str, retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


# --------------------------------------------------------------------------- GEO layout


def geo_stub(acc: str) -> str:
    """GEO's folder grouping: drop the last 3 digits, write "nnn" (GSE1234 -> GSE1nnn)."""
    m = _ACC_RE.match(str(acc).strip())
    if not m:
        raise ValueError(
            f"not a GEO accession: {acc!r} (expected GSE/GPL/GSM/GDS followed by digits)"
        )
    prefix, digits = m.groups()
    return f"{prefix}{digits[:-3]}nnn"


def _check_acc(acc: str, prefix: str) -> str:
    acc = str(acc).strip()
    if not acc.startswith(prefix):
        raise ValueError(f"expected a {prefix} accession, got {acc!r}")
    geo_stub(acc)
    return acc


def series_matrix_relpath(gse: str, filename: str | None = None) -> str:
    gse = _check_acc(gse, "GSE")
    filename = filename or f"{gse}_series_matrix.txt.gz"
    return f"series/{geo_stub(gse)}/{gse}/matrix/{filename}"


def family_soft_relpath(gse: str) -> str:
    """The series' family SOFT (all platforms and samples with their tables)."""
    gse = _check_acc(gse, "GSE")
    return f"series/{geo_stub(gse)}/{gse}/soft/{gse}_family.soft.gz"


def suppl_relpath(gse: str, filename: str) -> str:
    gse = _check_acc(gse, "GSE")
    if not filename or "/" in filename:
        raise ValueError(f"supplementary file name must be a bare file name, got {filename!r}")
    return f"series/{geo_stub(gse)}/{gse}/suppl/{filename}"


def platform_relpath(gpl: str, file: str = "annot") -> str:
    """``annot`` -> annot/GPLn.annot.gz (curated symbols); ``soft`` -> soft/GPLn_family.soft.gz."""
    gpl = _check_acc(gpl, "GPL")
    names = {"annot": f"annot/{gpl}.annot.gz", "soft": f"soft/{gpl}_family.soft.gz"}
    if file not in names:
        raise ValueError(f"platform file must be 'annot' or 'soft', got {file!r}")
    return f"platforms/{geo_stub(gpl)}/{gpl}/{names[file]}"


def ncbi_counts_name(gse: str) -> str:
    """GEO's name for the NCBI-generated raw counts of a human RNA-seq series."""
    return f"{_check_acc(gse, 'GSE')}_raw_counts_GRCh38.p13_NCBI.tsv.gz"


def ncbi_counts_relpath(gse: str, filename: str | None = None) -> str:
    """``rnaseq_counts/GSEnnn/<file>``: the counts' path in a local mirror folder; over http(s)
    :func:`geo_url` turns it into the endpoint's query (type=rnaseq_counts&acc=GSEnnn&file=...)."""
    gse = _check_acc(gse, "GSE")
    filename = filename or ncbi_counts_name(gse)
    if "/" in filename:
        raise ValueError(f"NCBI counts file name must be a bare file name, got {filename!r}")
    return f"{NCBI_PREFIX}{gse}/{filename}"


def ncbi_annot_relpath(filename: str = NCBI_ANNOT_FILE) -> str:
    """``rnaseq_counts/<annotation file>`` (one file for all series of a genome build)."""
    if not filename or "/" in filename:
        raise ValueError(f"NCBI annotation file name must be a bare file name, got {filename!r}")
    return f"{NCBI_PREFIX}{filename}"


def is_ncbi_relpath(relpath: str) -> bool:
    return str(relpath).startswith(NCBI_PREFIX)


def source_base(relpath: str, base_url: str, ncbi_download_url: str | None = None) -> str:
    """The base a relpath is fetched from: GEO's download endpoint for the NCBI-generated
    counts, ``download.base_url`` (FTP tree or mirror) for everything else."""
    if is_ncbi_relpath(relpath):
        return str(ncbi_download_url or DEFAULT_NCBI_DOWNLOAD_URL)
    return str(base_url)


def _ncbi_query(relpath: str) -> str:
    parts = relpath[len(NCBI_PREFIX):].split("/")
    if len(parts) == 2:
        query = {"type": "rnaseq_counts", "acc": parts[0], "format": "file", "file": parts[1]}
    elif len(parts) == 1:
        query = {"type": "rnaseq_counts", "format": "file", "file": parts[0]}
    else:
        raise ValueError(f"not an NCBI counts path: {relpath!r} (expected {NCBI_PREFIX}[GSEnnn/]file)")
    return urlencode(query)


def is_remote(url_or_path: str | os.PathLike) -> bool:
    s = str(url_or_path)
    return s.startswith(("http://", "https://"))


def geo_url(base_url: str | os.PathLike, relpath: str) -> str:
    """Join a base (http(s) URL or local mirror folder) and a GEO relative path."""
    base = str(base_url)
    if base.startswith("file://"):
        base = base[len("file://"):]
    if is_remote(base):
        if is_ncbi_relpath(relpath):  # GEO's download endpoint: a query, not a path
            return f"{base}{'&' if '?' in base else '?'}{_ncbi_query(relpath)}"
        return f"{base.rstrip('/')}/{relpath.lstrip('/')}"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", base):
        raise DownloadError(
            f"download.base_url {base!r}: only http(s):// URLs or local folders are supported"
        )
    return str(Path(base) / relpath)


# --------------------------------------------------------------------------- validation


def looks_like_html(head: bytes) -> bool:
    """True if a body starts (after BOM/whitespace) like an HTML page, as GEO's challenge does."""
    h = head.lstrip()
    if h.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM
        h = h[3:].lstrip()
    low = h[:_HEAD].lower()
    if low.startswith((b"<!doctype html", b"<html")):
        return True
    return low.startswith(b"<?xml") and b"<html" in low


def _html_message(source: str, dest: Path) -> str:
    return (
        f"{source} returned an HTML page instead of the expected data file. GEO sometimes "
        "answers scripted clients with an HTML challenge (bot-check) page in place of the file. "
        f"The page was not kept. To fix it: download the file by hand in a web browser from "
        f"{source} and put it at {dest}, then rerun (or run with `offline: true` to use the "
        "files already on disk without any network access); or set `download.base_url` in the "
        "config to a GEO mirror (an http(s) URL or a local folder laid out like GEO)."
    )


def _check_head(head: bytes, expect: str, source: str, dest: Path) -> None:
    """Reject HTML and (for gzip) anything without the gzip magic, before keeping the body."""
    if looks_like_html(head):
        raise DownloadError(_html_message(source, dest))
    if not head:
        raise DownloadError(f"{source} returned an empty body (expected {expect} data for {dest})")
    if expect == "gzip" and not head.startswith(_GZIP_MAGIC):
        raise DownloadError(
            f"{source} is not a gzip file (starts with {head[:16]!r}); expected a .gz for {dest}. "
            "Check the file name, or download it by hand and put it at that path."
        )


def _gzip_problem(path: Path) -> str | None:
    """Decompress to the end (CRC and length checked); return why it fails, or None if intact."""
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError
        return f"{type(e).__name__}: {e}"
    return None


def _validate_file(path: Path, expect: str, source: str, dest: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    _check_head(head, expect, source, dest)
    if expect == "gzip":
        problem = _gzip_problem(path)
        if problem:
            raise DownloadError(
                f"{path} from {source} is not a complete gzip file ({problem}); it was not kept."
            )


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mtime(path: Path) -> str:
    t = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- transfer


class _Sink:
    """Write chunks to the .part file, hash them, and check the head as soon as it is known."""

    def __init__(self, fh, expect: str, source: str, dest: Path):
        self.fh, self.expect, self.source, self.dest = fh, expect, source, dest
        self.sha = hashlib.sha256()
        self.n = 0
        self.head = b""
        self.head_checked = False

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.head_checked:
            self.head += chunk[: _HEAD - len(self.head)]
            if len(self.head) >= _HEAD:
                self.finish_head()
        self.fh.write(chunk)
        self.sha.update(chunk)
        self.n += len(chunk)

    def finish_head(self) -> None:
        if not self.head_checked:
            self.head_checked = True
            _check_head(self.head, self.expect, self.source, self.dest)


def make_session() -> requests.Session:
    """A plain session (connection reuse only; retries are done by ``fetch``)."""
    s = requests.Session()
    s.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return s


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return min(float(resp.headers["Retry-After"]), _MAX_RETRY_AFTER)
    except (KeyError, ValueError):
        return None


def _http_attempt(
    session: requests.Session, url: str, part: Path, dest: Path, expect: str, timeout: float
) -> tuple[int, str]:
    """One GET into ``part``; returns (bytes, sha256). Raises _Transient or DownloadError."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    try:
        resp = session.get(url, stream=True, timeout=timeout, headers=headers)
    except requests.exceptions.SSLError as e:
        raise DownloadError(f"TLS error talking to {url}: {e}") from e
    except (requests.ConnectionError, requests.Timeout) as e:
        raise _Transient(f"{type(e).__name__}: {e}") from e
    with resp:
        status = resp.status_code
        if status >= 500 or status in _RETRY_STATUS:
            raise _Transient(f"HTTP {status} {resp.reason}", _retry_after(resp))
        if status in (404, 410):
            raise NotFoundError(
                f"HTTP {status} for {url}: the accession or file may not exist on GEO (check the "
                "accession and file name in the config; some series have no series matrix or "
                "supplementary file of that name)."
            )
        if status >= 400:
            hint = ""
            if status in (401, 403):
                hint = (
                    " GEO may be refusing scripted clients: download the file by hand in a web "
                    f"browser and put it at {dest} (then rerun, or run with `offline: true`), "
                    "or set `download.base_url` to a mirror."
                )
            raise DownloadError(f"HTTP {status} {resp.reason} for {url}.{hint}")
        if status != 200:
            raise DownloadError(f"unexpected HTTP {status} {resp.reason} for {url}")

        # Read raw bytes: a server that labels a .gz with Content-Encoding: gzip must not get
        # it silently decompressed. Transfer-decoding is only applied to text we asked for.
        encoding = resp.headers.get("Content-Encoding", "identity").lower()
        decode = expect == "text" and encoding not in ("", "identity")
        length = resp.headers.get("Content-Length")
        with open(part, "wb") as fh:
            sink = _Sink(fh, expect, url, dest)
            try:
                for chunk in resp.raw.stream(_CHUNK, decode_content=decode):
                    sink.write(chunk)
            except (urllib3.exceptions.HTTPError, requests.RequestException) as e:
                raise _Transient(f"body cut short after {sink.n} bytes: {e}") from e
            sink.finish_head()
        if length is not None and not decode and length.isdigit() and int(length) != sink.n:
            raise _Transient(f"body cut short: got {sink.n} of {length} bytes (Content-Length)")
        if expect == "gzip":
            problem = _gzip_problem(part)
            if problem:
                msg = f"{url} is not a complete gzip file ({problem})"
                if length is None:  # length unverifiable: maybe the connection dropped
                    raise _Transient(msg)
                raise DownloadError(
                    f"{msg}, although the server sent all {length} bytes it announced: the file "
                    f"on the server is damaged. It was not kept. Try a mirror "
                    f"(`download.base_url`) or download it by hand and put it at {dest}."
                )
        return sink.n, sink.sha.hexdigest()


def _copy_local(src: Path, part: Path, dest: Path, expect: str) -> tuple[int, str]:
    if not src.is_file():
        raise NotFoundError(
            f"{src} not found in the local GEO mirror (download.base_url); the accession or "
            f"file may not exist, or the mirror is incomplete. Put the file there or at {dest}."
        )
    with open(src, "rb") as fin, open(part, "wb") as fh:
        sink = _Sink(fh, expect, str(src), dest)
        for chunk in iter(lambda: fin.read(_CHUNK), b""):
            sink.write(chunk)
        sink.finish_head()
    if expect == "gzip":
        problem = _gzip_problem(part)
        if problem:
            raise DownloadError(f"{src} is not a complete gzip file ({problem}); it was not kept.")
    return sink.n, sink.sha.hexdigest()


def fetch(
    url_or_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    expect: str = "gzip",
    offline: bool = False,
    timeout: float = 60,
    retries: int = 4,
    backoff: float = 1.0,
    known_sha256: str | None = None,
    session: requests.Session | None = None,
) -> dict:
    """Make ``dest`` a validated copy of ``url_or_path``; return a manifest row.

    ``retries`` is the number of extra attempts after the first (so ``retries + 1`` in all);
    ``timeout`` applies to connecting and to each read. ``known_sha256`` (from the previous
    manifest) lets an intact ``dest`` be reused without a request ("cached"). The row's
    ``file`` is ``dest`` as given; ``date`` is the download time (UTC), or the file's mtime when
    cached. ``offline`` only forbids the network; a local mirror folder is still copied from.
    """
    if expect not in EXPECT:
        raise ValueError(f"expect must be one of {EXPECT}, got {expect!r}")
    dest = Path(dest)
    src = str(url_or_path)
    if src.startswith("file://"):
        src = src[len("file://"):]
    remote = is_remote(src)
    offline = offline and remote  # a local mirror folder is not the network: copy from it

    if dest.is_file():
        if known_sha256 is not None:
            sha = sha256_file(dest)
            if sha == known_sha256:
                return _row(src, dest, dest.stat().st_size, sha, _mtime(dest), "cached")
            if offline:
                raise DownloadError(
                    f"{dest} does not match the manifest: sha256 {sha} on disk, {known_sha256} "
                    f"recorded when it was downloaded from {src}. Replace it with a fresh copy "
                    "(or run online to fetch it again)."
                )
            log.info("%s changed since the manifest (sha256 %s); fetching again", dest, sha)
        elif offline:
            # A cache filled by hand: trust the user but not the content's format.
            _validate_file(dest, expect, str(dest), dest)
            return _row(src, dest, dest.stat().st_size, sha256_file(dest), _mtime(dest), "cached")
    elif offline:
        raise DownloadError(
            f"offline mode: {dest} is missing (it would come from {src}). Fill the cache by hand: "
            f"download that file (e.g. in a web browser) and put it at {dest}, or run with "
            "`offline: false`."
        )

    part = dest.with_name(dest.name + ".part")
    own_session = session is None and remote
    if own_session:
        session = make_session()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not remote:
            nbytes, sha = _copy_local(Path(src), part, dest, expect)
        else:
            nbytes, sha = _retry_loop(session, src, part, dest, expect, timeout, retries, backoff)
        os.replace(part, dest)
    except OSError as e:  # local disk: read-only or full cache folder, unreadable mirror file
        if isinstance(e, requests.RequestException):  # also an OSError, but not the disk's
            raise
        raise DownloadError(
            f"cannot copy {src} to {dest}: {e}; the folder {dest.parent} must be writable "
            "(read-only file system, permissions or a full disk?)"
        ) from e
    finally:
        if part.exists():  # not unlink(missing_ok): a read-only file system refuses even that
            part.unlink()
        if own_session:
            session.close()
    log.info("downloaded %s (%d bytes) -> %s", src, nbytes, dest)
    return _row(src, dest, nbytes, sha, _now(), "downloaded")


def _retry_loop(session, url, part, dest, expect, timeout, retries, backoff) -> tuple[int, str]:
    attempt = 0
    while True:
        try:
            return _http_attempt(session, url, part, dest, expect, timeout)
        except _Transient as e:
            if attempt >= retries:
                raise DownloadError(
                    f"could not download {url} after {attempt + 1} attempt(s); last error: {e}. "
                    "Check the network, set `download.base_url` to a mirror, or download the "
                    f"file by hand and put it at {dest} (then run with `offline: true`)."
                ) from e
            delay = backoff * 2**attempt
            if e.retry_after is not None:
                delay = max(delay, e.retry_after)
            log.warning("%s: %s; retry %d/%d in %.2gs", url, e, attempt + 1, retries, delay)
            part.unlink(missing_ok=True)
            _sleep(delay)
            attempt += 1


def _row(url: str, dest: Path, nbytes: int, sha: str, date: str, status: str) -> dict:
    return {
        "url": url, "file": str(dest), "bytes": int(nbytes), "sha256": sha,
        "date": date, "status": status,
    }


# --------------------------------------------------------------------------- many files

_DEFAULT_MATRIX_RE = re.compile(r"series/GSE\d*nnn/(GSE\d+)/matrix/(GSE\d+)_series_matrix\.txt\.gz")


def not_found_hint(relpath: str) -> str:
    """What to configure when a file GEO was asked for does not exist ("" if nothing to add)."""
    m = _DEFAULT_MATRIX_RE.fullmatch(str(relpath))
    if m and m.group(1) == m.group(2):
        gse = m.group(1)
        return (
            f" The series may be split per platform: GEO then has no {gse}_series_matrix.txt.gz "
            f"but one {gse}-GPLmmm_series_matrix.txt.gz per platform (listed under "
            f"series/{geo_stub(gse)}/{gse}/matrix/). Set the dataset's series_matrix_file to that "
            "name, or to a list of the names to combine them."
        )
    if is_ncbi_relpath(relpath):
        return (
            " GEO computes these NCBI raw counts only for some RNA-seq series (human, "
            "'Download RNA-seq counts' on the series page) and names them "
            "GSEnnn_raw_counts_GRCh38.p13_NCBI.tsv.gz; check the name there and set counts.file, "
            "or use counts.source: supplementary with the submitter's count table."
        )
    return ""


def _hinted(relpath: str, err: NotFoundError) -> NotFoundError:
    hint = not_found_hint(relpath)
    return NotFoundError(f"{err}{hint}") if hint else err



def _expect_for(name: str) -> str:
    return "gzip" if name.endswith(".gz") else "text"


def _read_manifest(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    if not path.is_file():
        return None
    try:
        df = read_tsv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DownloadError(
            f"cannot read download manifest {path}: {e}; delete it to refetch"
        ) from e
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DownloadError(
            f"download manifest {path} lacks column(s) {missing} (expected {MANIFEST_COLUMNS}); "
            "delete it to refetch"
        )
    return df.drop_duplicates("file", keep="last").set_index("file")


def fetch_all(
    entries: Iterable[tuple[str, str]],
    base_url: str | os.PathLike,
    outdir: str | os.PathLike,
    manifest_path: str | os.PathLike,
    *,
    offline: bool = False,
    timeout: float = 60,
    retries: int = 4,
    backoff: float = 1.0,
    session: requests.Session | None = None,
) -> pd.DataFrame:
    """Fetch ``(relpath, local_name)`` entries into ``outdir`` and write the manifest TSV.

    ``local_name`` is relative to ``outdir`` and is the manifest's ``file`` column; files
    ending in .gz are checked as gzip, others as text. All entries are attempted; if any fail,
    the manifest is still written (failed entries keep their previous row, since their file
    was left untouched) and one DownloadError lists every failure.
    """
    import pandas as pd

    entries = [(str(r), str(n)) for r, n in entries]
    outdir, manifest_path = Path(outdir), Path(manifest_path)
    names = [n for _, n in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate local file names in download entries: {dup}")
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts or not n:
            raise ValueError(f"local file name must be relative inside {outdir}, got {n!r}")

    prev = _read_manifest(manifest_path)
    own = session is None and not offline and is_remote(str(base_url))
    if own:
        session = make_session()
    rows, errors = [], []
    try:
        for relpath, name in entries:
            url = geo_url(base_url, relpath)
            known = None
            if prev is not None and name in prev.index:
                recorded = prev.at[name, "sha256"]
                known = None if pd.isna(recorded) or not recorded else str(recorded)
            try:
                try:
                    row = fetch(
                        url, outdir / name, expect=_expect_for(name), offline=offline,
                        timeout=timeout, retries=retries, backoff=backoff, known_sha256=known,
                        session=session,
                    )
                except NotFoundError as e:
                    raise _hinted(relpath, e) from e
            except DownloadError as e:
                errors.append(f"{name}: {e}")
                if prev is not None and name in prev.index:
                    rows.append({"file": name, **prev.loc[name].to_dict()})
                continue
            row["file"] = name
            if row["status"] == "cached" and known is not None:
                row["date"] = prev.at[name, "date"]  # keep the original download date
            rows.append(row)
    finally:
        if own:
            session.close()
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    df["bytes"] = pd.to_numeric(df["bytes"]).astype("int64")
    write_tsv(df, manifest_path)
    if errors:
        raise DownloadError(
            f"{len(errors)} of {len(entries)} file(s) could not be obtained:\n" + "\n".join(errors)
        )
    return df


def download_file(
    relpath: str, base_url: str | os.PathLike, dest: str | os.PathLike, record: str | os.PathLike,
    *, ncbi_download_url: str | None = None, **fetch_kw,
) -> dict:
    """One file of a dataset into the cache, and its manifest row written to ``record``.

    The workflow runs one job per file with the file as the job's output, so Snakemake itself
    notices a deleted cached file and fetches exactly that one again (and --delete-all-output
    knows every file). A file put in the cache by hand is kept (the rule marks it ``update``):
    offline it is checked and recorded as cached, online it is fetched again. NCBI-generated
    counts (``rnaseq_counts/...``) come from ``ncbi_download_url`` when given (else ``base_url``
    is taken as their base: the workflow passes each file's own base, see common.smk).
    """
    dest = Path(dest)
    base = str(base_url)
    if ncbi_download_url is not None:
        base = source_base(relpath, base, ncbi_download_url)
    try:
        row = fetch(geo_url(base, relpath), dest, expect=_expect_for(dest.name), **fetch_kw)
    except NotFoundError as e:
        raise _hinted(relpath, e) from e
    row["file"] = dest.name
    write_records([row], MANIFEST_COLUMNS, record)
    return row


def write_manifest(files: Iterable[str | os.PathLike], records: Iterable[str | os.PathLike],
                   dest: str | os.PathLike) -> list[dict]:
    """The dataset's manifest from its files' records, after checking that each file on disk is
    still the one downloaded (same sha256): a cached file changed by hand or damaged on disk
    stops here, naming the file, instead of being analysed. Returns the rows (bytes as int)."""
    rows = []
    for path, record in zip(files, records):
        found = read_records(record)
        lack = [c for c in MANIFEST_COLUMNS if c not in (found[0] if found else {})]
        if len(found) != 1 or lack:
            raise DownloadError(
                f"download record {record} should hold one row with columns {MANIFEST_COLUMNS}; "
                f"found {len(found)} row(s)" + (f", lacking {lack}" if lack else "")
                + ". Delete it and rerun to fetch the file again.")
        row = {c: found[0][c] for c in MANIFEST_COLUMNS}
        sha = sha256_file(path)
        if sha != row["sha256"]:
            raise DownloadError(
                f"{path} changed since it was downloaded from {row['url']}: sha256 {sha} on disk, "
                f"{row['sha256']} recorded in {record}. Delete the file and rerun to fetch it again."
            )
        if not row["bytes"].isdigit():
            raise DownloadError(f"download record {record}: bytes {row['bytes']!r} is not a "
                                "whole number. Delete it and rerun to fetch the file again.")
        rows.append({**row, "bytes": int(row["bytes"])})
    write_records(rows, MANIFEST_COLUMNS, dest)
    return rows
