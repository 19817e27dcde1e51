"""An independent, pure-Python model of the benchmark rules: what compute_all_benchmarks() must produce.

Written from the rules as specified alone (not from the SQL), so that tests/test_engine_reference.py can compare the
engine against it on random data. Arithmetic is exact: `decimal.Decimal` with 60 significant digits (far more
than any quotient of these inputs needs to be rounded correctly) and every stored result rounded to 2 decimals
half away from zero (`ROUND_HALF_UP`, which is PostgreSQL's `round(numeric, 2)`); a result whose rounded value
does not fit its numeric(p,2) column becomes None and is counted in `out_of_range`.

Readings of the rules this model commits to (docs/metrics.md states them for users):
- A negative input anywhere (history or stored current values) is None (§2).
- A source's column is read only from rows of that source (§1 lists which columns each source fills); a value
  in another source's column is ignored.
- "Latest year in which any row of that source has a non-null value" looks at every history row of the
  source, whether or not its leaid is in `districts`.
- Percentile rank counts the district itself among the equal values: PR = (smaller + ½·equal) / n.
- The '00' row averages every district with enrollment > 0, including districts without a state (or filed
  under '00'); those have no state, hence no `vs_state` and no tier.
- `vs_state`, `vs_national`, tiers and averages use the stored (rounded) district values; trends use the
  unrounded history values (the ratio at Y and at B is enrollment ÷ teachers_fte, exact).
- `out_of_range` counts values (one per column of a row that could not be stored).
- Peer groups use the stored (rounded) values as well: eligibility and features from the current enrollment and
  child poverty and the stored swd_pct / ell_pct; z-scores in floating point with the mean and the population
  variance summed in leaid order (any fixed order is the rule's "double precision is fine"; this one makes the
  floats equal to the engine's, so ranks can be compared exactly), a feature whose values are all equal is left
  out; the mean of the peers' values is exact.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

CENT = Decimal("0.01")
EXACT = Context(prec=60)

SOURCES = ("ccd_directory", "ccd_finance", "edfacts_grad", "edfacts_assess", "crdc_absenteeism", "saipe")

# district current-value column -> (source, history column, numeric type (precision, scale) or None for integer)
CURRENT = {
    "enrollment": ("ccd_directory", "enrollment"),
    "spec_ed_students": ("ccd_directory", "spec_ed_students"),
    "ell_students": ("ccd_directory", "ell_students"),
    "teachers_fte": ("ccd_directory", "teachers_fte"),
    "chronic_absenteeism_rate": ("crdc_absenteeism", "chronic_absenteeism_rate"),
    "graduation_rate_total": ("edfacts_grad", "graduation_rate"),
    "math_proficiency_pct": ("edfacts_assess", "math_proficiency"),
    "read_proficiency_pct": ("edfacts_assess", "read_proficiency"),
    "expenditure_per_pupil": ("ccd_finance", "expenditure_pp"),
    "children_poverty_percent": ("saipe", "children_poverty_percent"),
}
CURRENT_COLUMNS = tuple(CURRENT) + ("student_teacher_ratio",)
HISTORY_VALUE_COLUMNS = ("enrollment", "spec_ed_students", "ell_students", "teachers_fte", "graduation_rate",
                         "math_proficiency", "read_proficiency", "expenditure_pp", "chronic_absenteeism_rate",
                         "children_poverty_percent")

# metric m -> (district value column, state average column, precision of the average column)
METRICS = {
    "absenteeism": ("chronic_absenteeism_rate", "avg_chronic_absenteeism_rate"),
    "graduation": ("graduation_rate_total", "avg_graduation_rate"),
    "student_teacher_ratio": ("student_teacher_ratio", "avg_student_teacher_ratio"),
    "swd_pct": ("swd_pct", "avg_swd_pct"),
    "ell_pct": ("ell_pct", "avg_ell_pct"),
    "math_proficiency": ("math_proficiency_pct", "avg_math_proficiency"),
    "read_proficiency": ("read_proficiency_pct", "avg_read_proficiency"),
    "expenditure_pp": ("expenditure_per_pupil", "avg_expenditure_per_pupil"),
}

# trend column -> (source, how to read the value from a history row, 'point' | 'pct', biennial?)
def _col(name):
    return lambda row: clean(row.get(name))


def _ratio(row):
    e, t = clean(row.get("enrollment")), clean(row.get("teachers_fte"))
    if e is None or t is None or t <= 0:
        return None
    return _div(Decimal(e), Decimal(t))


TRENDS = {
    "swd_trend_3yr": ("ccd_directory", _col("spec_ed_students"), "pct", False),
    "ell_trend_3yr": ("ccd_directory", _col("ell_students"), "pct", False),
    "absenteeism_trend_3yr": ("crdc_absenteeism", _col("chronic_absenteeism_rate"), "point", True),
    "graduation_trend_3yr": ("edfacts_grad", _col("graduation_rate"), "point", False),
    "student_teacher_ratio_trend_3yr": ("ccd_directory", _ratio, "point", False),
    "math_proficiency_trend_3yr": ("edfacts_assess", _col("math_proficiency"), "point", False),
    "read_proficiency_trend_3yr": ("edfacts_assess", _col("read_proficiency"), "point", False),
    "expenditure_pp_trend_3yr": ("ccd_finance", _col("expenditure_pp"), "pct", False),
}

# trend column -> its metric (benchmark_metrics.metric)
TREND_METRIC = {t: ("swd_pct" if t == "swd_trend_3yr" else "ell_pct" if t == "ell_trend_3yr"
                    else t.removesuffix("_trend_3yr")) for t in TRENDS}

# peer groups: K nearest, at least MIN_PEER_VALUES peers with a value for a difference
K_PEERS = 40
MIN_PEER_VALUES = 10
PEER_COLUMNS = tuple(f"{m}_vs_peers" for m in METRICS)

# numeric(p, 2) precision of every stored result column
PRECISION = {
    **{c: 8 for c in PEER_COLUMNS},
    "student_teacher_ratio": 8, "swd_pct": 5, "ell_pct": 5,
    **{t: 8 for t in TRENDS},
    **{f"{m}_vs_{w}": 8 for m in METRICS for w in ("state", "national")},
    "avg_chronic_absenteeism_rate": 5, "avg_student_teacher_ratio": 8, "avg_swd_pct": 5, "avg_ell_pct": 5,
    "avg_math_proficiency": 5, "avg_read_proficiency": 5, "avg_graduation_rate": 5,
    "avg_expenditure_per_pupil": 12, "avg_poverty_rate": 5,
}

BENCHMARK_COLUMNS = (
    ("swd_pct", "ell_pct") + tuple(TRENDS)
    + tuple(f"{m}_vs_{w}" for m in METRICS for w in ("state", "national"))
    + tuple(f"{m}_quartile_state" for m in METRICS)
)
STATE_COLUMNS = ("avg_chronic_absenteeism_rate", "avg_student_teacher_ratio", "avg_swd_pct", "avg_ell_pct",
                 "avg_enrollment", "avg_math_proficiency", "avg_read_proficiency", "avg_graduation_rate",
                 "avg_expenditure_per_pupil", "avg_poverty_rate", "total_districts", "total_enrollment")
NATIONAL = "00"

assert len(BENCHMARK_COLUMNS) == 34


def clean(v):
    """§2: None and negative values are missing."""
    if v is None:
        return None
    v = Decimal(v)
    return None if v < 0 else v


def _div(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(EXACT):
        return a / b


def round2(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Result:
    districts: dict[str, dict[str, object]] = field(default_factory=dict)
    states: dict[str, dict[str, object]] = field(default_factory=dict)
    overflows: list[tuple[str, str, str]] = field(default_factory=list)   # (table, key, column)
    peers: dict[str, list[tuple[str, int, float]]] = field(default_factory=dict)  # leaid -> [(peer, rank, distance)]
    # metric -> {value_year, trend_base_year, trend_end_year} (benchmark_metrics); value_year only when the current
    # values were recomputed
    years: dict[str, dict[str, int | None]] = field(default_factory=dict)

    @property
    def out_of_range(self) -> int:
        return len(self.overflows)


class _Model:
    def __init__(self, history, districts, states, current):
        self.rows: dict[tuple[str, int, str], dict] = {}
        for r in history:
            self.rows[(r["leaid"], int(r["year"]), r["source"])] = r
        self.districts = {d["leaid"]: d.get("state_fips") for d in districts}
        self.states = list(states)
        self.current = current
        self.result = Result()

    def store(self, table: str, key: str, column: str, x: Decimal | None) -> Decimal | None:
        """round(x, 2) into a numeric(p,2) column; None (and an out_of_range count) when it does not fit."""
        if x is None:
            return None
        x = round2(x)
        if abs(x) >= Decimal(10) ** (PRECISION[column] - 2):
            self.result.overflows.append((table, key, column))
            return None
        return x

    def years_with_value(self, source: str, value) -> list[int]:
        return sorted({y for (_, y, s), r in self.rows.items() if s == source and value(r) is not None})

    def value_at(self, leaid: str, year: int | None, source: str, value):
        r = self.rows.get((leaid, year, source)) if year is not None else None
        return value(r) if r is not None else None

    # -- compute_current_values --------------------------------------------------------------------------
    def current_values(self) -> dict[str, dict]:
        latest = {}
        for col, (source, hcol) in CURRENT.items():
            years = self.years_with_value(source, _col(hcol))
            latest[col] = years[-1] if years else None
        # a metric's value year: its column's; for a quotient of two counts the earlier of the two
        both = lambda a, b: min(latest[a], latest[b]) if latest[a] is not None and latest[b] is not None else None  # noqa: E731
        for m, year in (("absenteeism", latest["chronic_absenteeism_rate"]),
                        ("graduation", latest["graduation_rate_total"]),
                        ("student_teacher_ratio", both("enrollment", "teachers_fte")),
                        ("swd_pct", both("enrollment", "spec_ed_students")),
                        ("ell_pct", both("enrollment", "ell_students")),
                        ("math_proficiency", latest["math_proficiency_pct"]),
                        ("read_proficiency", latest["read_proficiency_pct"]),
                        ("expenditure_pp", latest["expenditure_per_pupil"])):
            self.result.years.setdefault(m, {})["value_year"] = year
        out = {}
        for leaid in self.districts:
            cur = {col: self.value_at(leaid, latest[col], CURRENT[col][0], _col(CURRENT[col][1]))
                   for col in CURRENT}
            e, t = cur["enrollment"], cur["teachers_fte"]
            cur["student_teacher_ratio"] = self.store("districts", leaid, "student_teacher_ratio",
                                                      _div(e, t) if e is not None and t is not None and t > 0
                                                      else None)
            out[leaid] = cur
        return out

    # -- compute_state_averages --------------------------------------------------------------------------
    def state_averages(self, cur: dict[str, dict]) -> None:
        for fips in self.states:
            members = [c for leaid, c in cur.items()
                       if (fips == NATIONAL or self.districts[leaid] == fips)
                       and clean(c["enrollment"]) is not None and clean(c["enrollment"]) > 0]
            avg = {}

            def weighted(col, avg_col, members=members, fips=fips):
                pairs = [(clean(c[col]), clean(c["enrollment"])) for c in members if clean(c[col]) is not None]
                if not pairs:
                    return None
                return self.store("states", fips, avg_col,
                                  _div(sum(x * e for x, e in pairs), sum(e for _, e in pairs)))

            def share(col, avg_col, members=members, fips=fips):
                pairs = [(clean(c[col]), clean(c["enrollment"])) for c in members if clean(c[col]) is not None]
                if not pairs:
                    return None
                return self.store("states", fips, avg_col,
                                  100 * _div(sum(x for x, _ in pairs), sum(e for _, e in pairs)))

            avg["avg_chronic_absenteeism_rate"] = weighted("chronic_absenteeism_rate", "avg_chronic_absenteeism_rate")
            avg["avg_student_teacher_ratio"] = weighted("student_teacher_ratio", "avg_student_teacher_ratio")
            avg["avg_math_proficiency"] = weighted("math_proficiency_pct", "avg_math_proficiency")
            avg["avg_read_proficiency"] = weighted("read_proficiency_pct", "avg_read_proficiency")
            avg["avg_graduation_rate"] = weighted("graduation_rate_total", "avg_graduation_rate")
            avg["avg_expenditure_per_pupil"] = weighted("expenditure_per_pupil", "avg_expenditure_per_pupil")
            avg["avg_swd_pct"] = share("spec_ed_students", "avg_swd_pct")
            avg["avg_ell_pct"] = share("ell_students", "avg_ell_pct")
            enrollments = [clean(c["enrollment"]) for c in members]
            avg["avg_enrollment"] = (_div(sum(enrollments), Decimal(len(enrollments))).quantize(
                Decimal(1), rounding=ROUND_HALF_UP) if enrollments else None)
            poverty = [clean(c["children_poverty_percent"]) for c in members
                       if clean(c["children_poverty_percent"]) is not None]
            avg["avg_poverty_rate"] = (self.store("states", fips, "avg_poverty_rate",
                                                  _div(sum(poverty), Decimal(len(poverty))))
                                       if poverty else None)
            avg["total_districts"] = len(members)
            avg["total_enrollment"] = sum(enrollments, Decimal(0))
            self.result.states[fips] = avg

    # -- compute_district_trends -------------------------------------------------------------------------
    def trends(self, cur: dict[str, dict]) -> dict[str, dict]:
        out = {leaid: {} for leaid in self.districts}
        for leaid, c in cur.items():
            e = clean(c["enrollment"])
            for pct, count in (("swd_pct", "spec_ed_students"), ("ell_pct", "ell_students")):
                n = clean(c[count])
                out[leaid][pct] = (self.store("districts", leaid, pct, 100 * _div(n, e))
                                   if n is not None and e is not None and e > 0 else None)
        for col, (source, value, kind, biennial) in TRENDS.items():
            years = self.years_with_value(source, value)
            y = years[-1] if years else None
            if y is None:
                b = None
            elif biennial:
                before = [yr for yr in years if yr < y]
                b = before[-1] if before else None
            else:
                b = max(years[0], y - 3)
            self.result.years.setdefault(TREND_METRIC[col], {}).update(
                trend_base_year=b if b != y else None, trend_end_year=y)
            for leaid in self.districts:
                t = None
                if b is not None and b != y:
                    vy = self.value_at(leaid, y, source, value)
                    vb = self.value_at(leaid, b, source, value)
                    if vy is not None and vb is not None:
                        if kind == "point":
                            t = vy - vb
                        elif vb != 0:
                            t = 100 * _div(vy - vb, vb)
                out[leaid][col] = self.store("districts", leaid, col, t)
        return out

    # -- compute_deltas_quartiles ------------------------------------------------------------------------
    def deltas_quartiles(self, cur: dict[str, dict], bench: dict[str, dict]) -> None:
        def district_value(leaid, col):
            return clean(bench[leaid][col] if col in ("swd_pct", "ell_pct") else cur[leaid][col])

        nation = self.result.states.get(NATIONAL, {})
        for m, (col, avg_col) in METRICS.items():
            by_state: dict[str, list[Decimal]] = {}
            for leaid, fips in self.districts.items():
                v = district_value(leaid, col)
                if v is not None and fips not in (None, NATIONAL):   # '00' is the nation, not a state
                    by_state.setdefault(fips, []).append(v)
            for leaid, fips in self.districts.items():
                v = district_value(leaid, col)
                state_avg = self.result.states.get(fips, {}).get(avg_col) if fips not in (None, NATIONAL) else None
                national_avg = nation.get(avg_col)
                bench[leaid][f"{m}_vs_state"] = self.store(
                    "districts", leaid, f"{m}_vs_state", v - state_avg if v is not None and state_avg is not None
                    else None)
                bench[leaid][f"{m}_vs_national"] = self.store(
                    "districts", leaid, f"{m}_vs_national", v - national_avg
                    if v is not None and national_avg is not None else None)
                peers = by_state.get(fips, []) if v is not None else []
                bench[leaid][f"{m}_quartile_state"] = tier(v, peers)


    # -- compute_peer_groups ------------------------------------------------------------------------------
    def peer_groups(self, values: dict[str, dict]) -> None:
        """The K nearest eligible districts of every eligible district, and the differences to their mean.

        values: per leaid the stored values: enrollment, children_poverty_percent, swd_pct, ell_pct and the
        district column of every metric (METRICS)."""
        eligible = sorted(
            leaid for leaid, v in values.items()
            if clean(v["enrollment"]) is not None and clean(v["enrollment"]) > 0
            and all(clean(v[c]) is not None for c in ("children_poverty_percent", "ell_pct", "swd_pct")))
        raw = {leaid: (math.log(float(clean(values[leaid]["enrollment"]))),
                       float(clean(values[leaid]["children_poverty_percent"])),
                       float(clean(values[leaid]["ell_pct"])), float(clean(values[leaid]["swd_pct"])))
               for leaid in eligible}
        z = {leaid: [0.0, 0.0, 0.0, 0.0] for leaid in eligible}
        for i in range(4):
            xs = [raw[leaid][i] for leaid in eligible]          # leaid order
            if not xs or min(xs) == max(xs):
                continue                                         # no spread: left out
            total = 0.0
            for x in xs:
                total += x
            mean = total / len(xs)
            squares = 0.0
            for x in xs:
                squares += (x - mean) * (x - mean)
            sd = math.sqrt(squares / len(xs))
            for leaid in eligible:
                z[leaid][i] = (raw[leaid][i] - mean) / sd

        def distance(a, b):
            d = [za - zb for za, zb in zip(z[a], z[b])]
            return math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + d[3] * d[3])

        for leaid in values:
            out = self.result.districts.setdefault(leaid, {})
            peers = []
            if leaid in z:
                peers = sorted((distance(leaid, other), other) for other in eligible if other != leaid)[:K_PEERS]
                self.result.peers[leaid] = [(other, rank, d) for rank, (d, other) in enumerate(peers, 1)]
            for m, (col, _) in METRICS.items():
                v = clean(values[leaid][col])
                present = [clean(values[other][col]) for _, other in peers if clean(values[other][col]) is not None]
                diff = None
                if v is not None and len(present) >= MIN_PEER_VALUES:
                    diff = v - _div(sum(present), Decimal(len(present)))
                out[f"{m}_vs_peers"] = self.store("districts", leaid, f"{m}_vs_peers", diff)


def tier(v, peers: list) -> str | None:
    """§4 tier of `v` among `peers` (which include v): PR = (smaller + ½·equal) / n, NULL when n < 4."""
    n = len(peers)
    if v is None or n < 4:
        return None
    smaller = sum(1 for p in peers if p < v)
    equal = sum(1 for p in peers if p == v)
    twice_rank = 2 * smaller + equal          # 2n·PR, compared in integers: PR >= k/4  <=>  4·(2n·PR) >= 2n·k
    if 4 * twice_rank >= 3 * 2 * n:
        return "well_above"
    if 4 * twice_rank >= 2 * 2 * n:
        return "above"
    if 4 * twice_rank >= 1 * 2 * n:
        return "below"
    return "well_below"


def compute_all(history: Iterable[Mapping], districts: Iterable[Mapping], states: Iterable[str],
                current: Mapping[str, Mapping] | None = None, peers: bool = True) -> Result:
    """What `compute_all_benchmarks(refresh_current)` must leave in the tables.

    history:   dicts with leaid, year, source and the history value columns (None for NULL)
    districts: dicts with leaid and state_fips
    states:    every fips in `states` (including '00')
    current:   None to recompute current values from history (refresh_current = true); otherwise the stored
               current values per leaid (refresh_current = false), which are used as they are (negatives = None)
    peers:     False leaves out the peer groups (quadratic in the number of districts)
    Returns Result with, per leaid, the current values (as computed, or as given), the 34 benchmark columns and
    (with peers) the 8 peer differences; per state fips the averages and totals; with peers, `peers`: per
    eligible leaid its peers as (peer leaid, rank, distance).
    """
    model = _Model(history, districts, states, current)
    if current is None:
        cur = model.current_values()
    else:
        cur = {leaid: {col: current.get(leaid, {}).get(col) for col in CURRENT_COLUMNS}
               for leaid in model.districts}
    model.state_averages(cur)
    bench = model.trends(cur)
    model.deltas_quartiles(cur, bench)
    for leaid in model.districts:
        model.result.districts[leaid] = {**cur[leaid], **bench[leaid]}
    if peers:
        model.peer_groups(model.result.districts)
    return model.result
