"""Turning raw API records into staging rows (SPEC §2 and §6).

Every function here is pure apart from the `counts` Counter it updates, so each rule can be tested alone.

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
  row in `states` is skipped (`skipped_unknown_state`).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

INT_MAX = 2**31 - 1
SMALLINT_MAX = 2**15 - 1
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
BREAKDOWN_COLUMNS = ("race", "sex", "lep", "disability", "econ_disadvantaged", "homeless", "migrant",
                     "foster_care", "military_connected", "grade_edfacts")
CODED_TEXT = frozenset({"-1", "-2", "-3", "-9"})

# Staging columns written for each source (see loader/land.py for the tables).
STAGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "ccd_directory": ("leaid", "fips", "enrollment", "spec_ed_students", "ell_students", "teachers_fte",
                      "name", "city", "county_name", "urban_centric_locale", "agency_type"),
    "ccd_finance": ("leaid", "fips", "expenditure_pp"),
    "edfacts_grad": ("leaid", "fips", "graduation_rate"),
    "edfacts_assess": ("leaid", "fips", "math_proficiency", "read_proficiency"),
    "saipe": ("leaid", "fips", "children_poverty_percent"),   # raw value; scaled to 0-100 when landing
}
SCHOOL_STAGE_COLUMNS = ("kind", "leaid", "fips", "school", "value")


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


def clean_fips(value) -> str | None:
    if type(value) is int and 0 < value < 100:
        return f"{value:02d}"
    if type(value) is str and value.strip().isdigit() and 0 < int(value) < 100:
        return f"{int(value):02d}"
    return None


def is_all_students(rec: dict) -> bool:
    for col in BREAKDOWN_COLUMNS:
        v = rec.get(col)
        if v is not None and v != 99 and v != "99":
            return False
    return True


def _identify(rec: dict, ctx: SliceContext) -> tuple[str, str] | None:
    """Checks common to every record -> (leaid, fips), or None (counted) when the record is not used."""
    counts = ctx.counts
    if not is_all_students(rec):
        counts["breakdown_rows"] += 1
        return None
    year = rec.get("year")
    if year is not None and year != ctx.year and str(year).strip() != str(ctx.year):
        counts["skipped_wrong_year"] += 1
        return None
    leaid, why = clean_leaid(rec.get("leaid"))
    if leaid is None:
        counts[why] += 1
        return None
    fips = clean_fips(rec.get("fips")) or ctx.fips
    if fips not in ctx.states:
        counts["skipped_unknown_state"] += 1
        ctx.unknown_fips.add(fips)
        return None
    return leaid, fips


# ---------------------------------------------------------------------------------------------- sources

def directory_row(rec: dict, ctx: SliceContext):
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    c = ctx.counts
    return (*ids,
            to_int(rec.get("enrollment"), c),
            to_int(rec.get("spec_ed_students"), c),
            to_int(rec.get("english_language_learners"), c),
            to_numeric(rec.get("teachers_total_fte"), c, 10),
            clean_text(rec.get("lea_name")),
            clean_text(rec.get("city_location")) or clean_text(rec.get("city_mailing")),
            clean_text(rec.get("county_name")),
            to_int(rec.get("urban_centric_locale"), c, SMALLINT_MAX),
            to_int(rec.get("agency_type"), c, SMALLINT_MAX))


def finance_row(rec: dict, ctx: SliceContext):
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    return (*ids, per_pupil(rec.get("exp_current_elsec_total"), rec.get("enrollment_fall_responsible"), ctx.counts))


def grad_row(rec: dict, ctx: SliceContext):
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    return (*ids, to_percent(rec.get("grad_rate_midpt"), ctx.counts))


def assess_row(rec: dict, ctx: SliceContext):
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    c = ctx.counts
    return (*ids, to_percent(rec.get("math_test_pct_prof_midpt"), c),
            to_percent(rec.get("read_test_pct_prof_midpt"), c))


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
        self.max_value: Decimal | None = None

    def observe(self, pct, children, poor) -> None:
        if pct is None:
            return
        pct = Decimal(pct)
        if self.max_value is None or pct > self.max_value:
            self.max_value = pct
        if children and poor is not None and children > 0 and poor <= children:
            share = Decimal(poor) / Decimal(children)
            d_frac, d_pct = abs(pct - share), abs(pct - share * HUNDRED)
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


def saipe_row(rec: dict, ctx: SliceContext, scale: SaipeScale):
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    c = ctx.counts
    pct = parse_number(rec.get("est_population_5_17_poverty_pct"), c)
    scratch: Counter = Counter()     # the counts are only evidence for the scale; their junk is not ours
    scale.observe(pct, parse_number(rec.get("est_population_5_17"), scratch),
                  parse_number(rec.get("est_population_5_17_poverty"), scratch))
    if pct is not None and pct > 100:
        c["nulled_out_of_range"] += 1      # neither a fraction nor a percentage
        pct = None
    return (*ids, pct)


def crdc_school_row(rec: dict, ctx: SliceContext, kind: str):
    """kind 'a': students_chronically_absent; 'e': enrollment_crdc. One row per school (all-students row)."""
    ids = _identify(rec, ctx)
    if ids is None:
        return None
    school = clean_text(rec.get("crdc_id")) or clean_text(rec.get("ncessch"))
    if school is None:
        ctx.counts["skipped_no_school_id"] += 1
        return None
    field_name = "students_chronically_absent" if kind == "a" else "enrollment_crdc"
    return (kind, *ids, school, to_int(rec.get(field_name), ctx.counts))


ROW_BUILDERS = {
    "ccd_directory": directory_row,
    "ccd_finance": finance_row,
    "edfacts_grad": grad_row,
    "edfacts_assess": assess_row,
}

NULLED_KEYS = ("nulled_negative", "nulled_junk", "nulled_out_of_range")
SKIPPED_KEYS = ("skipped_no_leaid", "skipped_bad_leaid", "skipped_wrong_year", "skipped_unknown_state",
                "skipped_no_school_id")


def values_nulled(counts) -> int:
    return sum(counts.get(k, 0) for k in NULLED_KEYS)


def records_skipped(counts) -> int:
    return sum(counts.get(k, 0) for k in SKIPPED_KEYS)
