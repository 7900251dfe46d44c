"""Reader and writer for pabulib ``.pb`` files (pabulib.org, format of Faliszewski et al. 2023).

A file has three sections in this order, each a ``;``-separated CSV table whose first row is a
header: ``META`` (``key;value``), ``PROJECTS`` (at least ``project_id;cost``) and ``VOTES`` (at
least ``voter_id;vote``, the vote being comma-separated project ids). Fields may be quoted.

Amounts (``cost``, META ``budget``, ``score``, ``points``) are exact: an ``int`` when whole
(``1500``, ``1500.00``, ``1500,0``), a ``Fraction`` otherwise (``1331751.11``), never rounded.
``selected`` keeps pabulib's marks 0..3 (1: chosen by the file's rule; 2 and 3: funded outside it).
Cumulative votes carry a ``points`` column; ordinal votes list projects in rank order. What the
format allows but is untidy is read and reported in ``PbFile.notes`` (a project named twice in a
vote is counted once; a field with a stray quote is read literally); every malformed input raises
PabulibError naming the line.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from os import PathLike
from typing import Any, TypeVar, Union

from chain.errors import PabulibError

SECTIONS = ("META", "PROJECTS", "VOTES")
REQUIRED_META = ("budget", "vote_type", "rule")
PROJECT_COLUMNS = ("project_id", "cost", "votes", "score", "name", "category", "selected", "district")
VOTE_COLUMNS = ("voter_id", "vote", "points", "district")
MISSING_VALUES = ("", "none")
AMOUNT_PATTERN = re.compile(r"[0-9]+(?:[.,]([0-9]+))?")
COUNT_PATTERN = re.compile(r"[0-9]+")
NOT_SELECTED, SELECTED_BY_RULE, FUNDED_FROM_RESERVE, FUNDED_FROM_EXTRA = 0, 1, 2, 3
SELECTED_MARKS = {"0": NOT_SELECTED, "1": SELECTED_BY_RULE, "2": FUNDED_FROM_RESERVE, "3": FUNDED_FROM_EXTRA}
SCORED_VOTE_TYPES = ("cumulative", "scoring")
Amount = Union[int, Fraction]   # int when whole, Fraction otherwise: exact, never rounded
Parsed = TypeVar("Parsed", int, Union[int, Fraction])


@dataclass(frozen=True, slots=True)
class PbProject:
    """One PROJECTS row; ``extra`` keeps every other column as (header, value) in file order."""

    project_id: str
    cost: Amount
    votes: int | None
    name: str
    category: str
    selected: int | None          # 0..3 as in the file (None: no mark); see SELECTED_MARKS
    district: str | None
    extra: tuple[tuple[str, str], ...]
    score: Amount | None = None   # the file's ``score`` column: points of cumulative/ordinal ballots

    @property
    def selected_by_rule(self) -> bool:
        """Marked 1: chosen by the file's rule (2 and 3 were funded outside it)."""
        return self.selected == SELECTED_BY_RULE

    @property
    def funded(self) -> bool:
        return self.selected in (SELECTED_BY_RULE, FUNDED_FROM_RESERVE, FUNDED_FROM_EXTRA)


@dataclass(frozen=True, slots=True)
class PbVote:
    """One VOTES row: the ballot's project ids in file order (rank order for ordinal ballots), and
    every other column; ``points`` is the ``points`` column (aligned with ``choices``) when the file
    has one."""

    voter_id: str
    choices: tuple[str, ...]
    district: str | None
    extra: tuple[tuple[str, str], ...]
    points: tuple[Amount, ...] | None = None
    repeated: tuple[str, ...] = field(default=(), compare=False)   # namings dropped as repeats (see notes)


@dataclass(frozen=True, slots=True)
class PbFile:
    """A whole pabulib file; ``meta`` keeps the META rows in file order; ``notes`` say what the
    parser normalised (not part of equality: a written file reads back without them)."""

    meta: tuple[tuple[str, str], ...]
    projects: tuple[PbProject, ...]
    votes: tuple[PbVote, ...]
    notes: tuple[str, ...] = field(default=(), compare=False)

    def meta_get(self, key: str) -> str | None:
        for meta_key, value in self.meta:
            if meta_key == key:
                return value
        return None

    @property
    def budget(self) -> Amount:
        return parse_amount(self.require_meta("budget"), "META budget")

    @property
    def vote_type(self) -> str:
        return self.require_meta("vote_type")

    @property
    def rule(self) -> str:
        return self.require_meta("rule")

    @property
    def min_length(self) -> int | None:
        return self.get_meta_count("min_length")

    @property
    def max_length(self) -> int | None:
        return self.get_meta_count("max_length")

    def require_meta(self, key: str) -> str:
        value = self.meta_get(key)
        if value is None:
            raise PabulibError(f"META has no {key!r}")
        return value

    def get_meta_count(self, key: str) -> int | None:
        value = self.meta_get(key)
        return None if value is None or is_missing(value) else parse_count(value, f"META {key}")

    def get_meta_amount(self, key: str) -> Amount | None:
        value = self.meta_get(key)
        return None if value is None or is_missing(value) else parse_amount(value, f"META {key}")

    @property
    def scored(self) -> bool:
        """Ballots that give points: cumulative (``points`` column) and ordinal (ranks)."""
        return self.vote_type in SCORED_VOTE_TYPES or self.vote_type == "ordinal"

    def get_rank_length(self) -> int:
        """Ordinal: the number of ranks whose points count down to 1: META max_length, or the
        longest ballot when there is none or a ballot is longer."""
        return max(self.max_length or 0, max((len(vote.choices) for vote in self.votes), default=0))

    def get_ballot_points(self, vote: PbVote, rank_length: int | None = None) -> tuple[Amount, ...]:
        """Points each choice of ``vote`` gets: the ``points`` column when the vote has one; for an
        ordinal vote without it, ``max_length`` for rank 1 down by one per rank; 1 for approval.
        (Pass ``rank_length = get_rank_length()`` when asking for many votes: it reads every vote.)"""
        if vote.points is not None:
            return vote.points
        if self.vote_type == "ordinal":
            top = self.get_rank_length() if rank_length is None else rank_length
            return tuple(top - rank for rank in range(len(vote.choices)))
        return (1,) * len(vote.choices)

    def get_all_ballot_points(self) -> list[tuple[Amount, ...]]:
        """``get_ballot_points`` of every vote, in file order."""
        top = self.get_rank_length() if self.vote_type == "ordinal" else 0
        return [self.get_ballot_points(vote, top) for vote in self.votes]


def parse_amount(text: str, what: str) -> Amount:
    """A non-negative decimal, exact: ``12``/``12.00``/``12,0`` are the int 12, ``12.5`` is
    ``Fraction(25, 2)``. Signs, spaces, exponents and anything else are PabulibErrors."""
    match = AMOUNT_PATTERN.fullmatch(text)
    if match is None:
        raise PabulibError(f"{what}: {text!r} is not a non-negative amount")
    fraction = match.group(1)
    if fraction is None:
        return int(text)
    whole = int(text[: match.start(1) - 1])
    digits = fraction.rstrip("0")
    if not digits:
        return whole
    return whole + Fraction(int(digits), 10 ** len(digits))


def format_amount(value: Amount) -> str:
    """The decimal text of an amount (``parse_amount`` reads it back exactly)."""
    if isinstance(value, int) or value.denominator == 1:
        return str(int(value))
    for digits in range(1, 64):
        scaled = value * 10**digits
        if scaled.denominator == 1:
            whole, rest = divmod(int(scaled), 10**digits)
            return f"{whole}.{rest:0{digits}d}"
    raise PabulibError(f"amount {value} has no exact decimal form")


def parse_count(text: str, what: str) -> int:
    if COUNT_PATTERN.fullmatch(text) is None:
        raise PabulibError(f"{what}: {text!r} is not a non-negative integer")
    return int(text)


def is_missing(value: str) -> bool:
    return value.lower() in MISSING_VALUES


class Notes:
    """What a parse normalised, by kind: the lines where it happened (for ``PbFile.notes``)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[int]] = {}

    def add(self, kind: str, line: int) -> None:
        self.lines.setdefault(kind, []).append(line)

    def render(self) -> tuple[str, ...]:
        out = []
        for kind, lines in self.lines.items():
            shown = ", ".join(str(line) for line in lines[:5]) + (", …" if len(lines) > 5 else "")
            out.append(f"{kind}: {len(lines)} (line{'s' if len(lines) > 1 else ''} {shown})")
        return tuple(out)


STRAY_QUOTE = "a field with a quote inside it, read literally"
REPEATED_CHOICE = ("a vote names a project more than once; counted once, at its first place (cumulative points "
                   "of every naming added up)")


class Rows:
    """CSV rows of a pabulib text with their line numbers; blank rows are skipped.

    A one-line row that strict CSV cannot read because a field holds a stray quote
    (``"Odkupmy" i my``: pabutools reads such rows too) is split on ``;`` literally and noted.
    """

    def __init__(self, text: str, notes: Notes | None = None) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        self.text = text
        self.lines: list[str] | None = None
        self.notes = notes if notes is not None else Notes()
        self.reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
        self.pending: tuple[int, list[str]] | None = None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        if self.pending is not None:
            row, self.pending = self.pending, None
            return row
        while True:
            start = self.reader.line_num + 1
            try:
                fields = next(self.reader)
            except csv.Error as error:
                end = self.reader.line_num
                fields = self.read_literally(start, end, error)
            if any(field.strip() for field in fields):
                return self.reader.line_num, [field.strip() for field in fields]

    def read_literally(self, start: int, end: int, error: csv.Error) -> list[str]:
        if end != start:
            raise PabulibError(f"line {start}: bad CSV (row ends at line {end}): {error}") from None
        if self.lines is None:
            self.lines = self.text.split("\n")
        line = self.lines[start - 1].rstrip("\r") if start <= len(self.lines) else ""
        if '"' not in line:
            raise PabulibError(f"line {start}: bad CSV: {error}") from None
        self.notes.add(STRAY_QUOTE, start)
        return line.split(";")

    def push_back(self, row: tuple[int, list[str]]) -> None:
        self.pending = row


def get_section_name(fields: Sequence[str]) -> str | None:
    """``META``/``PROJECTS``/``VOTES`` (any case) alone on a row; otherwise None."""
    if fields[0].upper() in SECTIONS and not any(fields[1:]):
        return fields[0].upper()
    return None


def read_header(rows: Rows, section: str, required: Sequence[str]) -> tuple[int, list[str]]:
    line, fields = next_row(rows, f"the header of {section}")
    if get_section_name(fields) is not None:
        raise PabulibError(f"line {line}: {section} has no header row")
    if len(set(fields)) != len(fields):
        raise PabulibError(f"line {line}: {section} header repeats a column: {fields!r}")
    for column in required:
        if column not in fields:
            raise PabulibError(f"line {line}: {section} header has no {column!r} column")
    return line, fields


def next_row(rows: Rows, expected: str) -> tuple[int, list[str]]:
    try:
        return next(rows)
    except StopIteration:
        raise PabulibError(f"end of file: expected {expected}") from None


def read_section_rows(rows: Rows, section: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """Data rows up to the next section marker (which is pushed back) or the end."""
    for line, fields in rows:
        if get_section_name(fields) is not None:
            rows.push_back((line, fields))
            return
        if len(fields) != width:
            raise PabulibError(
                f"line {line}: {section} row has {len(fields)} fields, header has {width}"
            )
        yield line, fields


def expect_section(rows: Rows, section: str) -> None:
    line, fields = next_row(rows, f"section {section}")
    found = get_section_name(fields)
    if found != section:
        what = f"section {found}" if found else f"row {fields[:3]!r}"
        raise PabulibError(f"line {line}: expected section {section}, found {what}")


def parse_meta(rows: Rows) -> tuple[tuple[str, str], ...]:
    line, header = read_header(rows, "META", ("key", "value"))
    if header != ["key", "value"]:
        raise PabulibError(f"line {line}: META header must be 'key;value', got {header!r}")
    meta: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line, (key, value) in read_section_rows(rows, "META", 2):
        if not key or key in seen:
            raise PabulibError(f"line {line}: META key {key!r} is empty or repeated")
        seen.add(key)
        meta.append((key, value))
        if key == "budget":
            wrap_line(line, parse_amount, value, "META budget")
    for key in REQUIRED_META:
        if key not in seen:
            raise PabulibError(f"line {line}: META has no {key!r}")
    return tuple(meta)


def parse_projects(rows: Rows) -> tuple[PbProject, ...]:
    _, header = read_header(rows, "PROJECTS", ("project_id", "cost"))
    projects: list[PbProject] = []
    seen: set[str] = set()
    for line, fields in read_section_rows(rows, "PROJECTS", len(header)):
        project = build_project(line, dict(zip(header, fields)), header)
        if project.project_id in seen:
            raise PabulibError(f"line {line}: project id {project.project_id!r} is repeated")
        seen.add(project.project_id)
        projects.append(project)
    return tuple(projects)


def build_project(line: int, row: dict[str, str], header: Sequence[str]) -> PbProject:
    project_id = row["project_id"]
    if not project_id or "," in project_id:
        raise PabulibError(f"line {line}: project id {project_id!r} is empty or contains ','")
    cost = wrap_line(line, parse_amount, row["cost"], f"project {project_id} cost")
    if cost <= 0:
        raise PabulibError(f"line {line}: project {project_id} cost must be > 0")
    votes_text = row.get("votes", "")
    score_text = row.get("score", "")
    selected_text = row.get("selected", "")
    if not is_missing(selected_text) and selected_text not in SELECTED_MARKS:
        raise PabulibError(f"line {line}: project {project_id} selected must be 0, 1, 2 or 3")
    district = row.get("district", "")
    return PbProject(
        project_id=project_id,
        cost=cost,
        votes=None if is_missing(votes_text)
        else wrap_line(line, parse_count, votes_text, f"project {project_id} votes"),
        name=row.get("name", ""),
        category=row.get("category", ""),
        selected=None if is_missing(selected_text) else SELECTED_MARKS[selected_text],
        district=None if is_missing(district) else district,
        extra=tuple((key, row[key]) for key in header if key not in PROJECT_COLUMNS),
        score=None if is_missing(score_text)
        else wrap_line(line, parse_amount, score_text, f"project {project_id} score"),
    )


def wrap_line(line: int, parser: Callable[[str, str], Parsed], text: str, what: str) -> Parsed:
    """Run an amount or count parser, prefixing its error with the line number."""
    try:
        return parser(text, what)
    except PabulibError as error:
        raise PabulibError(f"line {line}: {error.message}") from None


def parse_votes(rows: Rows, project_ids: set[str], vote_type: str = "") -> tuple[PbVote, ...]:
    _, header = read_header(rows, "VOTES", ("voter_id", "vote"))
    extra_columns = [(position, key) for position, key in enumerate(header) if key not in VOTE_COLUMNS]
    voter_position, vote_position = header.index("voter_id"), header.index("vote")
    district_position = header.index("district") if "district" in header else None
    points_position = header.index("points") if "points" in header else None
    votes: list[PbVote] = []
    seen: set[str] = set()
    for line, fields in read_section_rows(rows, "VOTES", len(header)):
        voter_id = fields[voter_position]
        if not voter_id or voter_id in seen:
            raise PabulibError(f"line {line}: voter id {voter_id!r} is empty or repeated")
        seen.add(voter_id)
        district = None if district_position is None else fields[district_position]
        choices = parse_choices(line, fields[vote_position], project_ids)
        points = None if points_position is None else parse_points(line, fields[points_position], len(choices))
        repeated: tuple[str, ...] = ()
        if len(set(choices)) != len(choices):
            kept, points = keep_first(choices, points, add_points=vote_type in SCORED_VOTE_TYPES)
            repeated = tuple((Counter(choices) - Counter(kept)).elements())
            choices = kept
            rows.notes.add(REPEATED_CHOICE, line)
        votes.append(PbVote(
            voter_id=voter_id,
            choices=choices,
            district=None if district is None or is_missing(district) else district,
            extra=tuple((key, fields[position]) for position, key in extra_columns),
            points=points,
            repeated=repeated,
        ))
    return tuple(votes)


def parse_choices(line: int, text: str, project_ids: set[str]) -> tuple[str, ...]:
    choices = tuple(choice.strip() for choice in text.split(",")) if text else ()
    for choice in choices:
        if choice not in project_ids:
            raise PabulibError(f"line {line}: vote for unknown project {choice!r}")
    return choices


def parse_points(line: int, text: str, count: int) -> tuple[Amount, ...]:
    values = tuple(wrap_line(line, parse_amount, value.strip(), "points") for value in text.split(",")) \
        if text and not is_missing(text) else ()
    if len(values) != count:
        raise PabulibError(f"line {line}: the vote names {count} projects but gives {len(values)} points")
    return values


def keep_first(choices: tuple[str, ...], points: tuple[Amount, ...] | None,
               add_points: bool = False) -> tuple[tuple[str, ...], tuple[Amount, ...] | None]:
    """A vote naming a project again counts it once, at its first place. Points: the first
    naming's (a ranking), or with ``add_points`` every naming's added up (cumulative points the
    voter gave the project in two entries)."""
    kept: dict[str, int] = {}
    for position, choice in enumerate(choices):
        kept.setdefault(choice, position)
    positions = sorted(kept.values())
    if points is None:
        return tuple(choices[i] for i in positions), None
    if add_points:
        totals: dict[str, Amount] = {}
        for choice, value in zip(choices, points):
            totals[choice] = totals.get(choice, 0) + value
        return tuple(choices[i] for i in positions), tuple(totals[choices[i]] for i in positions)
    return tuple(choices[i] for i in positions), tuple(points[i] for i in positions)


def validate_counts(pb: PbFile) -> None:
    for key, actual in (("num_projects", len(pb.projects)), ("num_votes", len(pb.votes))):
        declared = pb.get_meta_count(key)
        if declared is not None and declared != actual:
            raise PabulibError(f"META {key} is {declared} but the file has {actual}")


def parse_pb(text: str) -> PbFile:
    """Parse a whole pabulib text; PabulibError (with the line) for anything malformed."""
    if not isinstance(text, str):
        raise PabulibError(f"expected text, got {type(text).__name__}")
    rows = Rows(text)
    expect_section(rows, "META")
    meta = parse_meta(rows)
    expect_section(rows, "PROJECTS")
    projects = parse_projects(rows)
    expect_section(rows, "VOTES")
    vote_type = dict(meta).get("vote_type", "")
    votes = parse_votes(rows, {project.project_id for project in projects}, vote_type)
    for line, fields in rows:
        raise PabulibError(f"line {line}: unexpected {fields[0]!r} after VOTES")
    pb = PbFile(meta=meta, projects=projects, votes=votes, notes=rows.notes.render())
    validate_counts(pb)
    validate_points(pb)
    return pb


def validate_points(pb: PbFile) -> None:
    """A cumulative (or scoring) vote that names projects must give them points."""
    if pb.vote_type in SCORED_VOTE_TYPES and any(vote.choices and vote.points is None for vote in pb.votes):
        raise PabulibError(f"a {pb.vote_type} file needs a 'points' column in VOTES")


def read_pb(path: str | PathLike[str]) -> PbFile:
    """Read and parse a ``.pb`` file (UTF-8, with or without a byte-order mark)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise PabulibError(f"{path}: not UTF-8 text: {error}") from None
    return parse_pb(text)


def compute_vote_counts(pb: PbFile) -> dict[str, int]:
    """Ballots naming each project, in PROJECTS order (what the ``votes`` column should say)."""
    counts = {project.project_id: 0 for project in pb.projects}
    for vote in pb.votes:
        for choice in vote.choices:
            counts[choice] += 1
    return counts


def compute_scores(pb: PbFile) -> dict[str, Amount]:
    """Points of each project, in PROJECTS order (what the ``score`` column should say): the
    ``points`` of cumulative votes, ``max_length`` down to 1 by rank for ordinal votes (unless they
    carry points), the vote count for approval and choose-1."""
    scores: dict[str, Amount] = {project.project_id: 0 for project in pb.projects}
    for vote, given in zip(pb.votes, pb.get_all_ballot_points()):
        for choice, points in zip(vote.choices, given):
            scores[choice] += points
    return scores


def write_pb(pb: PbFile) -> str:
    """Render ``pb`` as pabulib text that ``parse_pb`` and pabutools' parser read back.

    Columns: ``project_id;cost`` then ``votes``, ``score``, ``name``, ``category``, ``selected``,
    ``district`` when any project has them, then the ``extra`` columns (every project must carry
    the same extra keys). VOTES: ``voter_id;vote``, ``points`` and ``district`` when any, then
    extras. Fractional amounts are written as exact decimals. The
    output is parsed again and must give back ``pb`` exactly, else PabulibError says what differs
    (e.g. a value with surrounding spaces, a line break, or a META count that is wrong).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    write_row(writer, ["META"])
    write_row(writer, ["key", "value"])
    for key, value in pb.meta:
        write_row(writer, [key, value])
    write_row(writer, ["PROJECTS"])
    write_table(writer, get_project_header(pb.projects), [get_project_fields(p) for p in pb.projects])
    write_row(writer, ["VOTES"])
    write_table(writer, get_vote_header(pb.votes), [get_vote_fields(v) for v in pb.votes])
    text = buffer.getvalue()
    validate_round_trip(pb, parse_pb(text))
    return text


def write_row(writer: Any, fields: Sequence[str]) -> None:
    for field in fields:
        if not isinstance(field, str):
            raise PabulibError(f"cannot write {field!r}: every value must be a string")
        if "\n" in field or "\r" in field:
            raise PabulibError(f"cannot write {field!r}: pabutools does not read line breaks")
    if len(fields) > 1 and fields[0].upper() in SECTIONS:
        raise PabulibError(f"cannot write a row starting with {fields[0]!r}: it reads as a section")
    writer.writerow(fields)


def write_table(writer: Any, header: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    write_row(writer, header)
    for row in rows:
        write_row(writer, [row.get(column, "") for column in header])


def get_project_header(projects: Sequence[PbProject]) -> list[str]:
    header = ["project_id", "cost"]
    present = {
        "votes": any(p.votes is not None for p in projects),
        "score": any(p.score is not None for p in projects),
        "name": any(p.name for p in projects),
        "category": any(p.category for p in projects),
        "selected": any(p.selected is not None for p in projects),
        "district": any(p.district is not None for p in projects),
    }
    header += [column for column in PROJECT_COLUMNS[2:] if present[column]]
    return header + get_extra_columns(project.extra for project in projects)


def get_vote_header(votes: Sequence[PbVote]) -> list[str]:
    header = ["voter_id", "vote"]
    if any(vote.points is not None for vote in votes):
        header.append("points")
    if any(vote.district is not None for vote in votes):
        header.append("district")
    return header + get_extra_columns(vote.extra for vote in votes)


def get_extra_columns(extras: Iterable[tuple[tuple[str, str], ...]]) -> list[str]:
    columns: list[str] = []
    for extra in extras:
        for key, _ in extra:
            if key not in columns:
                columns.append(key)
    return columns


def format_optional(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Fraction):
        return format_amount(value)
    return str(value)


def get_project_fields(project: PbProject) -> dict[str, str]:
    fields = dict(project.extra)
    fields.update({
        "project_id": project.project_id,
        "cost": format_optional(project.cost),
        "votes": format_optional(project.votes),
        "score": format_optional(project.score),
        "name": project.name,
        "category": project.category,
        "selected": format_optional(project.selected),
        "district": format_optional(project.district),
    })
    return fields


def get_vote_fields(vote: PbVote) -> dict[str, str]:
    fields = dict(vote.extra)
    fields.update({
        "voter_id": vote.voter_id,
        "vote": ",".join(vote.choices),
        "points": "" if vote.points is None else ",".join(format_optional(p) for p in vote.points),
        "district": format_optional(vote.district),
    })
    return fields


def validate_round_trip(pb: PbFile, parsed: PbFile) -> None:
    if parsed.meta != pb.meta:
        raise PabulibError("cannot write: META would not read back the same")
    for index, (project, back) in enumerate(zip(pb.projects, parsed.projects)):
        if project != back:
            raise PabulibError(f"cannot write project #{index} {project.project_id!r}: reads back as {back!r}")
    for index, (vote, vote_back) in enumerate(zip(pb.votes, parsed.votes)):
        if vote != vote_back:
            raise PabulibError(f"cannot write vote #{index} {vote.voter_id!r}: reads back as {vote_back!r}")
    if parsed != pb:
        raise PabulibError("cannot write: the file would not read back the same")
