"""Line-level reading shared by all layouts: strict UTF-8, CRLF tolerated, errors that name file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .errors import KGFormatError, LoadReport


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of ``path``, 1-based, without the line ending.

    Accepts what real releases contain: CRLF endings and a last line without a newline. Blank lines
    at the very end are ignored; a blank line in the middle is yielded (callers reject it with its number).
    Bytes that are not UTF-8 raise :class:`KGFormatError` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise KGFormatError(path, None, "file not found")
    pending_blank: list[int] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise KGFormatError(
                    path, number, f"not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
                ) from None
            text = text.rstrip("\r\n")
            if number == 1 and text.startswith("\ufeff"):  # byte-order mark written by some editors
                text = text[1:]
            if not text.strip():
                pending_blank.append(number)
                continue
            for blank in pending_blank:
                yield blank, ""
            pending_blank.clear()
            yield number, text


def split_fields(
    path: str | Path,
    number: int,
    text: str,
    expected: int,
    sep: str | None = "\t",
    maxsplit: int = -1,
    allow_missing_last: bool = False,
) -> list[str]:
    """Split one line into exactly ``expected`` fields or raise a :class:`KGFormatError` naming the line.

    ``sep=None`` splits on runs of whitespace (the KG-S2S id files use spaces or tabs).
    """
    if not text.strip():
        raise KGFormatError(path, number, "empty line")
    fields = text.split(sep, maxsplit) if sep is not None else text.split(None, maxsplit)
    if sep is not None:
        fields = [f.strip() for f in fields]
    if allow_missing_last and len(fields) == expected - 1:
        fields.append("")
    if len(fields) != expected:
        raise KGFormatError(path, number, f"expected {expected} fields separated by {_name(sep)}, found {len(fields)}")
    return fields


def read_rows(
    path: str | Path,
    expected: int,
    *,
    sep: str | None = "\t",
    maxsplit: int = -1,
    count_header: bool = False,
    report: LoadReport | None = None,
    allow_missing_last: bool = False,
) -> list[tuple[int, list[str]]]:
    """Read a whole delimited file into ``(line_number, fields)`` rows.

    With ``count_header=True`` the first line must be an integer equal to the number of rows that follow
    (the KG-S2S convention); a disagreement raises, naming the file. With a ``report``, malformed rows
    are skipped and recorded there instead of raising. ``allow_missing_last`` accepts rows whose last
    field is absent (read as ``""``), e.g. an entity without a description.
    """
    rows: list[tuple[int, list[str]]] = []
    declared: int | None = None
    header_line = None
    for number, text in iter_lines(path):
        if count_header and declared is None:
            try:
                declared = int(text.strip())
            except ValueError:
                raise KGFormatError(path, number, f"expected a count on the first line, found {text[:40]!r}") from None
            header_line = number
            continue
        try:
            rows.append((number, split_fields(path, number, text, expected, sep, maxsplit, allow_missing_last)))
        except KGFormatError as err:
            if report is None:
                raise
            report.skip(err)
    if count_header:
        if declared is None:
            raise KGFormatError(path, None, "empty file: expected a count on the first line")
        found = len(rows) + (report.num_skipped_in(path) if report is not None else 0)
        if declared != found:
            raise KGFormatError(
                path, header_line, f"count line says {declared} rows but the file has {found}"
            )
    return rows


def _name(sep: str | None) -> str:
    return {"\t": "tabs", None: "whitespace", " ": "spaces", ",": "commas"}.get(sep, repr(sep))
