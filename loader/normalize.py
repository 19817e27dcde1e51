"""Turning raw API records into staging rows: the cleaning rules (docs/metrics.md and docs/ingest.md state them
for users).

Every function here is pure apart from the `counts` Counter it updates, so each rule can be tested alone. The
value cleaners (parse_number, to_int, ...) are exact; the page functions (directory_rows, ...) apply them
column by column, with a fast path for ordinary values.

Rules
- A negative number (the API's -1 missing, -2 not applicable, -3 suppressed, as a number or as a string like
  "-2") becomes NULL, counted as `nulled_negative`. Non-numeric junk ("N/A", "<5", "", true, [..], NaN) becomes
  NULL, counted as `nulled_junk`. JSON null is simply missing and is not counted. Numeric strings ("12.5") are
  accepted.
- Counts are rounded to whole numbers, other values to 2 decimals, half away from zero. A value that does not
  fit its column (integer > 2^31-1, numeric(5,2) >= 1000, ...) or a percentage outside 0-100 becomes NULL,
  counted as `nulled_out_of_range`. Nothing here ever raises on bad input.
- Only all-students rows are kept: every breakdown column that a record carries (race, sex, lep, disability,
  econ_disadvantaged, homeless, migrant, foster_care, military_connected, grade_edfacts) must be 99; a null
  breakdown column is taken as "not applicable". Other rows are counted as `breakdown_rows` and ignored.
- A record without a usable `leaid` is skipped (`skipped_no_leaid`; a non-numeric or over-long one:
  `skipped_bad_leaid`); a numeric leaid shorter than 7 digits is zero-padded (the API's leaid is a
  zero-padded 7-character string; `leaid_num` style integers lose the zero). A record of another year than
  the slice's is skipped (`skipped_wrong_year`). A record whose state (its `fips`, else the slice's) has no
  row in `states` is skipped (`skipped_unknown_state`). A page entry that is not a JSON object is skipped
  (`skipped_malformed_record`).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import repeat
from operator import contains, itemgetter

INT_MAX = 2**31 - 1
SMALLINT_MAX = 2**15 - 1
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
BREAKDOWN_COLUMNS = ("race", "sex", "lep", "disability", "econ_disadvantaged", "homeless", "migrant",
                     "foster_care", "military_connected", "grade_edfacts")
CODED_TEXT = frozenset({"-1", "-2", "-3", "-9"})

@dataclass
class SliceContext:
    """What a record is checked against: the slice's year and state, and the states the database knows."""

    year: int
    fips: str                           # the state queried, two digits
    states: dict[str, str]              # fips -> abbrev of every row in `states` (not '00')
    counts: Counter = field(default_factory=Counter)
    unknown_fips: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------- numbers

def parse_number(value, counts: Counter):
    """A JSON value -> int | Decimal | None (never negative). Counts what it nulls."""
    t = type(value)
    if t is int:
        if value < 0:
            counts["nulled_negative"] += 1
            return None
        return value
    if value is None:
        return None
    if t is float:
        if not math.isfinite(value):
            counts["nulled_junk"] += 1
            return None
        if value < 0:
            counts["nulled_negative"] += 1
            return None
        return Decimal(repr(value))
    if t is str:
        s = value.strip()
        try:
            d = Decimal(s)
        except InvalidOperation:
            counts["nulled_junk"] += 1
            return None
        if not d.is_finite():
            counts["nulled_junk"] += 1
            return None
        if d < 0:
            counts["nulled_negative"] += 1
            return None
        return d
    counts["nulled_junk"] += 1       # bool, list, dict, ...
    return None


def _fit(value, counts: Counter, limit):
    if value is not None and value > limit:
        counts["nulled_out_of_range"] += 1
        return None
    return value


def to_int(raw, counts: Counter, limit: int = INT_MAX) -> int | None:
    """A count: rounded half away from zero; NULL when negative, junk or above `limit`."""
    v = parse_number(raw, counts)
    if v is None:
        return None
    if type(v) is not int:
        if v > limit:                      # before rounding: a huge Decimal cannot be quantized
            counts["nulled_out_of_range"] += 1
            return None
        v = int(v.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return _fit(v, counts, limit)


def to_numeric(raw, counts: Counter, precision: int) -> Decimal | None:
    """A numeric(precision, 2) value rounded to cents; NULL when negative, junk or too large for the column."""
    v = parse_number(raw, counts)
    if v is None:
        return None
    limit = Decimal(10) ** (precision - 2)
    if v >= limit or (v := Decimal(v).quantize(CENT, rounding=ROUND_HALF_UP)) >= limit:
        counts["nulled_out_of_range"] += 1
        return None
    return v


def to_percent(raw, counts: Counter) -> Decimal | None:
    """A 0-100 percentage into numeric(5,2); above 100 is impossible and becomes NULL."""
    v = to_numeric(raw, counts, 5)
    return _fit(v, counts, HUNDRED)


def per_pupil(total_raw, pupils_raw, counts: Counter) -> Decimal | None:
    """expenditure ÷ pupils into numeric(12,2); NULL when either is missing or pupils is 0."""
    total = parse_number(total_raw, counts)
    pupils = parse_number(pupils_raw, counts)
    if total is None or pupils is None:
        return None
    if pupils == 0:
        counts["no_denominator"] += 1
        return None
    limit = Decimal(10) ** 10
    v = Decimal(total) / Decimal(pupils)
    if v >= limit or (v := v.quantize(CENT, rounding=ROUND_HALF_UP)) >= limit:
        counts["nulled_out_of_range"] += 1
        return None
    return v


# ---------------------------------------------------------------------------------------------- text, ids

def clean_text(value) -> str | None:
    """Identity text: trimmed; empty strings and the API's coded strings ("-1", "-2", "-3") become NULL."""
    if value is None or isinstance(value, (bool, list, dict)):
        return None
    if isinstance(value, (int, float)):
        return None if value < 0 else str(value)
    s = str(value).strip()
    if not s or s in CODED_TEXT:
        return None
    return s.replace("\x00", "")


def clean_leaid(value) -> tuple[str | None, str | None]:
    """-> (7-digit leaid, None) or (None, reason) with reason 'skipped_no_leaid' or 'skipped_bad_leaid'."""
    if type(value) is str and len(value) == 7 and value.isascii() and value.isdigit():
        return value, None                                   # the usual case
    if value is None:
        return None, "skipped_no_leaid"
    if type(value) is int:
        if value <= 0:
            return None, "skipped_no_leaid"
        s = str(value)
    elif type(value) is str:
        s = value.strip()
        if not s or s in CODED_TEXT:
            return None, "skipped_no_leaid"
    else:
        return None, "skipped_bad_leaid"
    if not s.isascii() or not s.isdigit() or len(s) > 7:
        return None, "skipped_bad_leaid"
    return s.zfill(7), None


_FIPS = {n: f"{n:02d}" for n in range(1, 100)}


def clean_fips(value) -> str | None:
    if type(value) is int:
        return _FIPS.get(value)
    if type(value) is str and value.strip().isdigit() and 0 < int(value) < 100:
        return f"{int(value):02d}"
    return None


# ---------------------------------------------------------------------------------------------- pages
# The functions below take a page (a list of records) at a time, column by column: the common case of each
# value costs one list-comprehension step, and only unusual values go through the exact cleaners above.
# (The loader's throughput is bound by this Python work; a record costs a few microseconds.)

def identify(recs: list[dict], ctx: SliceContext,
             breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> tuple[list[int], list[str], list[str]]:
    """The records that can be used -> (their indexes, leaids, fips); the others are counted, each once, by
    the first rule they break: breakdown row, wrong year, no/bad leaid, unknown state. `breakdown`: the
    breakdown columns the endpoint has (its variable list); each must be 99 (or null) where a record has it."""
    counts, n = ctx.counts, len(recs)
    bad: set[int] = set()
    if breakdown and not _all_totals(recs, breakdown):
        for col in breakdown:
            vals = [r.get(col) for r in recs]
            if vals.count(None) + vals.count(99) != n:
                bad.update(i for i, v in enumerate(vals) if v is not None and v != 99 and v != "99")
    counts["breakdown_rows"] += len(bad)
    years = [r.get("year") for r in recs]
    if years.count(ctx.year) + years.count(None) != n:
        want = str(ctx.year)
        wrong = {i for i, v in enumerate(years)
                 if i not in bad and v is not None and v != ctx.year and str(v).strip() != want}
        counts["skipped_wrong_year"] += len(wrong)
        bad |= wrong
    raw = [r.get("leaid") for r in recs]
    leaids = [v if type(v) is str and len(v) == 7 and v.isdigit() and v.isascii() else None for v in raw]
    if None in leaids:
        for i, v in enumerate(leaids):
            if v is None and i not in bad:
                leaids[i], why = clean_leaid(raw[i])
                if why:
                    counts[why] += 1
                    bad.add(i)
    raw = [r.get("fips") for r in recs]
    if raw.count(int(ctx.fips)) == n:                 # the usual page: every record of the state queried
        fips = [ctx.fips] * n
    else:
        fips = [(_FIPS.get(v) if type(v) is int else clean_fips(v)) or ctx.fips for v in raw]
    if not ctx.states.keys() >= set(fips):
        for i, f in enumerate(fips):
            if f not in ctx.states and i not in bad:
                counts["skipped_unknown_state"] += 1
                ctx.unknown_fips.add(f)
                bad.add(i)
    if not bad:
        return list(range(n)), leaids, fips
    idx = [i for i in range(n) if i not in bad]
    return idx, [leaids[i] for i in idx], [fips[i] for i in idx]


def _all_totals(recs: list[dict], breakdown: tuple[str, ...]) -> bool:
    """True when every breakdown column is 99 in every record that has it, and the records all have the same
    ones (the all-students rows the API was asked for): a few passes over the page in C instead of one Python
    pass per column. False means: check column by column."""
    if not recs:
        return True
    present = tuple(c for c in breakdown if c in recs[0])
    if any(any(map(contains, recs, repeat(c))) for c in breakdown if c not in present):
        return False
    if not present:
        return True
    try:
        combos = set(map(itemgetter(*present), recs))
    except (KeyError, TypeError):           # a record without the column, or an unhashable value ([], {})
        return False
    return combos == {(99,) * len(present) if len(present) > 1 else 99}


def ints(col: list, counts: Counter, limit: int = INT_MAX) -> list:
    return [v if v is None or (type(v) is int and 0 <= v <= limit) else to_int(v, counts, limit) for v in col]


def numerics(col: list, counts: Counter, precision: int) -> list:
    """Values for numeric(precision, 2). A plain non-negative number safely below the column's limit is passed
    on as it is: PostgreSQL rounds it to cents (half away from zero) when it is COPYed into the staging table,
    exactly as to_numeric() would."""
    fast = 10.0 ** (precision - 2) - 0.01
    return [v if v is None or ((type(v) is float or type(v) is int) and 0 <= v < fast)
            else to_numeric(v, counts, precision) for v in col]


def percents(col: list, counts: Counter) -> list:
    return [v if v is None or ((type(v) is float or type(v) is int) and 0 <= v <= 99.99)
            else to_percent(v, counts) for v in col]


def texts(col: list) -> list:
    return [v if type(v) is str and v and v.strip() is v and v not in CODED_TEXT and "\x00" not in v
            else clean_text(v) for v in col]


def _page(recs: list[dict], ctx: SliceContext, breakdown: tuple[str, ...]):
    """-> (leaids, fips, column getter) of the usable records."""
    idx, leaids, fips = identify(recs, ctx, breakdown)
    used = recs if len(idx) == len(recs) else [recs[i] for i in idx]
    return leaids, fips, (lambda name: [r.get(name) for r in used])


def directory_rows(recs: list[dict], ctx: SliceContext,
                   breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    leaids, fips, col = _page(recs, ctx, breakdown)
    c = ctx.counts
    city = [a or b for a, b in zip(texts(col("city_location")), texts(col("city_mailing")))]
    return list(zip(leaids, fips, ints(col("enrollment"), c), ints(col("spec_ed_students"), c),
                    ints(col("english_language_learners"), c), numerics(col("teachers_total_fte"), c, 10),
                    texts(col("lea_name")), city, texts(col("county_name")),
                    ints(col("urban_centric_locale"), c, SMALLINT_MAX), ints(col("agency_type"), c, SMALLINT_MAX)))


def finance_rows(recs: list[dict], ctx: SliceContext, breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    """Per-pupil spending = exp_current_elsec_total ÷ enrollment_fall_responsible, exact (Decimal)."""
    leaids, fips, col = _page(recs, ctx, breakdown)
    c = ctx.counts
    return [(leaid, f, per_pupil(total, pupils, c)) for leaid, f, total, pupils in
            zip(leaids, fips, col("exp_current_elsec_total"), col("enrollment_fall_responsible"))]


def grad_rows(recs: list[dict], ctx: SliceContext, breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    leaids, fips, col = _page(recs, ctx, breakdown)
    return list(zip(leaids, fips, percents(col("grad_rate_midpt"), ctx.counts)))


def assess_rows(recs: list[dict], ctx: SliceContext, breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    leaids, fips, col = _page(recs, ctx, breakdown)
    c = ctx.counts
    return list(zip(leaids, fips, percents(col("math_test_pct_prof_midpt"), c),
                    percents(col("read_test_pct_prof_midpt"), c)))


class SaipeScale:
    """Decides, per slice, whether est_population_5_17_poverty_pct arrived as a 0-1 fraction or as 0-100.

    The variable list calls it a "share"; a third-party note says 0-1 despite the _pct name. Each record that
    also carries the two counts (est_population_5_17_poverty ÷ est_population_5_17) votes for the scale its
    value is closer to; the majority decides. Without any votes, a slice whose largest value is at most 1 is
    taken as fractions (a whole state below 1 % child poverty is not plausible).
    """

    def __init__(self) -> None:
        self.fraction_votes = 0
        self.percent_votes = 0
        self.max_value: float | None = None

    def observe(self, pct, children, poor) -> None:
        if pct is None:
            return
        pct = float(pct)
        if self.max_value is None or pct > self.max_value:
            self.max_value = pct
        if children and poor is not None and children > 0 and poor <= children:
            share = float(poor) / float(children)
            d_frac, d_pct = abs(pct - share), abs(pct - share * 100)
            if d_frac < d_pct:
                self.fraction_votes += 1
            elif d_pct < d_frac:
                self.percent_votes += 1

    def is_fraction(self) -> bool:
        if self.fraction_votes != self.percent_votes:
            return self.fraction_votes > self.percent_votes
        return self.max_value is not None and self.max_value <= 1

    def describe(self) -> dict:
        return {"saipe_scale": "fraction (x100)" if self.is_fraction() else "percent",
                "saipe_votes_fraction": self.fraction_votes, "saipe_votes_percent": self.percent_votes}


def saipe_rows(recs: list[dict], ctx: SliceContext, scale: SaipeScale,
               breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    """The share in poverty as received (scale_saipe puts it on 0-100 once the slice's scale is known)."""
    leaids, fips, col = _page(recs, ctx, breakdown)
    c = ctx.counts
    scratch: Counter = Counter()     # the two counts are only evidence for the scale; their junk is not ours
    out = []
    for leaid, f, raw, kids, poor in zip(leaids, fips, col("est_population_5_17_poverty_pct"),
                                         col("est_population_5_17"), col("est_population_5_17_poverty")):
        pct = raw if (type(raw) is float or type(raw) is int) and 0 <= raw <= 100 else parse_number(raw, c)
        if pct is not None and pct > 100:
            c["nulled_out_of_range"] += 1      # neither a fraction nor a percentage
            pct = None
        scale.observe(pct, kids if type(kids) is int else parse_number(kids, scratch),
                      poor if type(poor) is int else parse_number(poor, scratch))
        out.append((leaid, f, pct))
    return out


def scale_saipe(rows: list[tuple], scale: SaipeScale, counts: Counter) -> list[tuple]:
    """saipe_rows' rows of a whole slice on the 0-100 scale: fractions x 100 (exactly, as decimals), rounded to
    2 decimals half away from zero; a value above 100 after that is NULL (`nulled_out_of_range`). Rows already
    on 0-100 are returned as they are (saipe_rows nulled anything above 100)."""
    if not scale.is_fraction():
        return rows
    out = []
    for leaid, fips, pct in rows:
        if pct is not None:
            pct = (Decimal(repr(pct)) if type(pct) is float else Decimal(pct)) * HUNDRED
            pct = pct.quantize(CENT, rounding=ROUND_HALF_UP)
            if pct > HUNDRED:
                counts["nulled_out_of_range"] += 1
                pct = None
        out.append((leaid, fips, pct))
    return out


def school_id(value) -> str | None:
    """A CRDC school identifier in the form both routes are compared in: trimmed, and an all-digit one (a JSON
    number, a whole float, "0123", "123.0") as its number's digits, so "0123", "123", 123 and 123.0 are one
    school. Anything else is kept as trimmed text; blanks, the API's codes and negative numbers are None."""
    t = type(value)
    if t is int:
        return str(value) if value >= 0 else None
    if t is float:
        if not math.isfinite(value) or value < 0:
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    s = clean_text(value)
    if s is None:
        return None
    digits, dot, zeros = s.partition(".")
    if digits.isascii() and digits.isdigit() and (not dot or not zeros.strip("0")):
        return str(int(digits))
    return s


def school_ids(col: list) -> list:
    # the usual value: digits with no leading zero (or a non-negative int), already in canonical form
    return [v if type(v) is str and v.isdigit() and v.isascii() and v[0] != "0" else school_id(v) for v in col]


def crdc_school_rows(recs: list[dict], ctx: SliceContext, kind: str,
                     breakdown: tuple[str, ...] = BREAKDOWN_COLUMNS) -> list[tuple]:
    """kind 'a': students_chronically_absent; 'e': enrollment_crdc. One ((leaid, school), value) pair per school
    (its all-students row), the school identified by crdc_id, else ncessch, in school_id()'s canonical form
    (the two routes may write one school's identifier differently); a row with neither is skipped
    (skipped_no_school_id)."""
    leaids, _fips, col = _page(recs, ctx, breakdown)
    values = ints(col("students_chronically_absent" if kind == "a" else "enrollment_crdc"), ctx.counts)
    schools = school_ids(col("crdc_id"))
    if None in schools:
        schools = [a or b for a, b in zip(schools, school_ids(col("ncessch")))]
        missing = schools.count(None)
        if missing:
            ctx.counts["skipped_no_school_id"] += missing
            return [(key, v) for key, v in zip(zip(leaids, schools), values) if key[1] is not None]
    return list(zip(zip(leaids, schools), values))


class SchoolSums:
    """CRDC school rows of one slice, summed to their districts.

    A school listed twice keeps its largest count (deterministic whatever the page order). For each district:
    schools (with a chronically-absent row), schools_unpaired (absent count or CRDC enrollment missing),
    absent_missing, absent_paired / enr_paired (sums over the schools that have both), absent_all (sum of
    the counts present). loader/land.py turns these into the rate.
    """

    def __init__(self) -> None:
        self.values: dict[str, dict[tuple[str, str], int | None]] = {"a": {}, "e": {}}

    def add(self, kind: str, rows: list[tuple]) -> None:
        """rows: crdc_school_rows(..., kind)."""
        d = self.values[kind]
        new = dict(rows)
        if len(new) == len(rows) and d.keys().isdisjoint(new):
            d.update(new)                      # the usual page: every school new
            return
        for key, v in rows:
            if key not in d or (v is not None and (d[key] is None or v > d[key])):
                d[key] = v

    def districts(self) -> list[tuple]:
        enr = self.values["e"]
        out: dict[str, list[int]] = {}
        for key, absent in self.values["a"].items():
            e = enr.get(key)
            t = out.get(key[0])
            if t is None:
                t = out[key[0]] = [0, 0, 0, 0, 0, 0]
            t[0] += 1
            if absent is None or e is None:
                t[1] += 1
            if absent is None:
                t[2] += 1
            else:
                t[5] += absent
                if e is not None:
                    t[3] += absent
                    t[4] += e
        return [(leaid, *t) for leaid, t in sorted(out.items())]

    def __len__(self) -> int:
        return len(self.values["a"])

    def has_enrollment(self) -> bool:
        return bool(self.values["e"])


NULLED_KEYS = ("nulled_negative", "nulled_junk", "nulled_out_of_range")
SKIPPED_KEYS = ("skipped_no_leaid", "skipped_bad_leaid", "skipped_wrong_year", "skipped_unknown_state",
                "skipped_no_school_id")


def values_nulled(counts) -> int:
    return sum(counts.get(k, 0) for k in NULLED_KEYS)


def records_skipped(counts) -> int:
    return sum(counts.get(k, 0) for k in SKIPPED_KEYS)
