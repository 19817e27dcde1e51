"""Reading benchmarks back for people: district profiles, state summaries, run status.

Queries return plain dicts (used as they are for --json); loader/cli/render.py draws them.
"""
from __future__ import annotations

from psycopg.rows import dict_row

from .errors import UserError

METRICS = {
    # metric: (label, unit of value, trend unit, +1 when higher is better, -1 when worse, 0 neutral)
    "absenteeism": ("Chronic absenteeism", "%", "pts", -1),
    "graduation": ("Graduation rate", "%", "pts", +1),
    "student_teacher_ratio": ("Students per teacher", "", "", -1),
    "swd_pct": ("Students with disabilities", "%", "%", 0),
    "ell_pct": ("English learners", "%", "%", 0),
    "math_proficiency": ("Math proficiency", "%", "pts", +1),
    "read_proficiency": ("Reading proficiency", "%", "pts", +1),
    "expenditure_pp": ("Spending per pupil", "$", "%", 0),
}
TIER_LABELS = {"well_above": "well above", "above": "above", "below": "below", "well_below": "well below"}


class NotFound(UserError):
    """The district asked for does not exist."""


def normalise_leaid(raw: str) -> str:
    """Accept '0601234', '601234' (leading zero dropped by a spreadsheet); refuse anything else."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= len(text) <= 7:
        raise UserError(f"LEAID must be up to 7 digits (e.g. 0622710), got {raw!r}", option="LEAID")
    return text.zfill(7)


def district_profile(conn, leaid: str) -> dict:
    """The district, its number of peers (peer_count), and per metric its value, averages, differences, tier,
    trend, and its peers' average (peer_avg = value − vs_peers) and the difference to it (vs_peers)."""
    conn.row_factory = dict_row
    head = conn.execute(
        "SELECT d.leaid, d.name, d.state_abbrev, s.name AS state_name, d.city, d.enrollment, "
        "       d.children_poverty_percent, d.directory_year, d.updated_at, "
        "       (SELECT count(*) FROM district_peers p WHERE p.leaid = d.leaid) AS peer_count "
        "  FROM districts d LEFT JOIN states s ON s.fips = d.state_fips WHERE d.leaid = %s", (leaid,)).fetchone()
    if head is None:
        raise NotFound(f"no district with LEAID {leaid}")
    rows = conn.execute(
        "SELECT metric, value, state_avg, national_avg, vs_state, vs_national, quartile_state, trend_3yr, "
        "       peer_avg, vs_peers "
        "  FROM district_benchmarks WHERE leaid = %s", (leaid,)).fetchall()
    order = list(METRICS)
    head["metrics"] = sorted(rows, key=lambda r: order.index(r["metric"]) if r["metric"] in order else 99)
    return head


# Why a district has no peer group: its missing features, in the order the rule names them.
PEER_FEATURES = (("enrollment", "enrollment"), ("children_poverty_percent", "child poverty"),
                 ("ell_pct", "ELL %"), ("swd_pct", "SWD %"))


def district_peers(conn, leaid: str) -> dict:
    """The district with its features, and its peer group nearest first: rank, leaid, name, state, enrollment,
    child poverty, ELL %, SWD % and distance (standardised units). `missing` names the features that keep an
    ineligible district out of the peer groups (its `peers` are then empty)."""
    conn.row_factory = dict_row
    head = conn.execute(
        "SELECT d.leaid, d.name, d.state_abbrev, d.enrollment, d.children_poverty_percent, d.ell_pct, d.swd_pct "
        "  FROM districts d WHERE d.leaid = %s", (leaid,)).fetchone()
    if head is None:
        raise NotFound(f"no district with LEAID {leaid}")
    head["missing"] = [label for col, label in PEER_FEATURES
                       if head[col] is None or head[col] < 0 or (col == "enrollment" and head[col] == 0)]
    head["peers"] = conn.execute(
        "SELECT p.peer_rank AS rank, d.leaid, d.name, d.state_abbrev, d.enrollment, d.children_poverty_percent, "
        "       d.ell_pct, d.swd_pct, p.distance "
        "  FROM district_peers p JOIN districts d ON d.leaid = p.peer_leaid "
        " WHERE p.leaid = %s ORDER BY p.peer_rank", (leaid,)).fetchall()
    return head


def state_summary(conn) -> list[dict]:
    conn.row_factory = dict_row
    return conn.execute(
        "SELECT fips, abbrev, name, total_districts, total_enrollment, avg_chronic_absenteeism_rate, "
        "       avg_graduation_rate, avg_student_teacher_ratio, avg_swd_pct, avg_ell_pct, avg_math_proficiency, "
        "       avg_read_proficiency, avg_expenditure_per_pupil, avg_poverty_rate, aggregates_updated_at "
        "  FROM states WHERE coalesce(total_districts, 0) > 0 OR fips = '00' "
        " ORDER BY fips = '00' DESC, abbrev").fetchall()


# A run still 'running' whose process is gone was interrupted (killed, or its connection lost).
RUNS = """
SELECT l.id, l.data_source,
       CASE WHEN l.status = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                 WHERE a.pid = (l.details ->> 'pid')::int AND a.backend_start <= l.started_at)
            THEN 'interrupted' ELSE l.status END AS status,
       l.records_updated, l.records_failed, l.started_at, l.completed_at, l.error_message
  FROM data_refresh_logs l
 ORDER BY l.started_at DESC, l.id DESC
 LIMIT %s
"""


def run_status(conn, limit: int = 10) -> dict:
    conn.row_factory = dict_row
    runs = conn.execute(RUNS, (limit,)).fetchall()
    coverage = conn.execute(
        "SELECT metric, count(value) AS with_value, count(quartile_state) AS with_tier, "
        "       count(trend_3yr) AS with_trend FROM district_benchmarks GROUP BY metric").fetchall()
    order = list(METRICS)
    coverage.sort(key=lambda r: order.index(r["metric"]))
    total = conn.execute("SELECT count(*) AS n FROM districts").fetchone()["n"]
    return {"districts": total, "runs": runs, "coverage": coverage}


# -- the HTML report's data (loader/report_html.py draws it) ----------------------------------------------

# Per metric: the states' average column, and the district's value in one history row as SQL (negative codes
# are missing, as in the SQL functions; the ratio and the two percentages computed as compute_* do).
STATE_AVG_COLUMNS = {
    "absenteeism": "avg_chronic_absenteeism_rate", "graduation": "avg_graduation_rate",
    "student_teacher_ratio": "avg_student_teacher_ratio", "swd_pct": "avg_swd_pct", "ell_pct": "avg_ell_pct",
    "math_proficiency": "avg_math_proficiency", "read_proficiency": "avg_read_proficiency",
    "expenditure_pp": "avg_expenditure_per_pupil",
}
HISTORY_VALUES = {
    "absenteeism": ("crdc_absenteeism", "chronic_absenteeism_rate", "chronic_absenteeism_rate >= 0"),
    "graduation": ("edfacts_grad", "graduation_rate", "graduation_rate >= 0"),
    "student_teacher_ratio": ("ccd_directory", "round(enrollment / teachers_fte, 2)",
                              "enrollment >= 0 AND teachers_fte > 0"),
    "swd_pct": ("ccd_directory", "round(100 * spec_ed_students::numeric / enrollment, 2)",
                "spec_ed_students >= 0 AND enrollment > 0"),
    "ell_pct": ("ccd_directory", "round(100 * ell_students::numeric / enrollment, 2)",
                "ell_students >= 0 AND enrollment > 0"),
    "math_proficiency": ("edfacts_assess", "math_proficiency", "math_proficiency >= 0"),
    "read_proficiency": ("edfacts_assess", "read_proficiency", "read_proficiency >= 0"),
    "expenditure_pp": ("ccd_finance", "expenditure_pp", "expenditure_pp >= 0"),
}


def resolve_state(conn, raw: str) -> dict:
    """A state or territory by its abbreviation (OR) or FIPS code (41, 041 → 41); not the national row."""
    conn.row_factory = dict_row
    text = raw.strip().upper()
    key = text.zfill(2)[-2:] if text.isdigit() and len(text) <= 3 else text
    row = conn.execute("SELECT fips, abbrev, name FROM states WHERE %s IN (fips, abbrev) AND fips <> '00'",
                       (key,)).fetchone()
    if row is None:
        raise UserError(f"no state {raw!r}: give its abbreviation (OR) or FIPS code (41)", option="--state")
    return row


def history_series(conn, leaid: str) -> dict[str, list[tuple[int, object]]]:
    """Per metric, the district's value in each year of district_data_history that has one, oldest first."""
    cols = ", ".join(f"max({expr}) FILTER (WHERE source = '{source}' AND {cond}) AS {metric}"
                     for metric, (source, expr, cond) in HISTORY_VALUES.items())
    conn.row_factory = dict_row
    rows = conn.execute(f"SELECT year, {cols} FROM district_data_history WHERE leaid = %s GROUP BY year ORDER BY year",
                        (leaid,)).fetchall()
    return {m: [(r["year"], r[m]) for r in rows if r[m] is not None] for m in METRICS}


def latest_years(conn) -> dict[str, int | None]:
    """Per metric, the latest year in which any district has a value: the school year of the current values."""
    cols = ", ".join(f"(SELECT max(year) FROM district_data_history WHERE source = '{source}' AND {cond}) AS {m}"
                     for m, (source, _, cond) in HISTORY_VALUES.items())
    conn.row_factory = dict_row
    return dict(conn.execute(f"SELECT {cols}").fetchone())


def state_distribution(conn, fips: str | None) -> dict[str, list[dict]]:
    """Per metric, the state's districts that have a value (leaid, name, value, vs_state, quartile_state),
    smallest value first."""
    out: dict[str, list[dict]] = {m: [] for m in METRICS}
    if fips is None:
        return out
    conn.row_factory = dict_row
    rows = conn.execute(
        "SELECT b.metric, b.leaid, b.name, b.value, b.vs_state, b.quartile_state "
        "  FROM district_benchmarks b JOIN districts d ON d.leaid = b.leaid "
        " WHERE d.state_fips = %s AND b.value >= 0 ORDER BY b.metric, b.value, b.leaid", (fips,)).fetchall()
    for r in rows:
        if r["metric"] in out:
            out[r.pop("metric")].append(r)
    return out


def _averages(conn, fips: str | None) -> dict | None:
    if fips is None:
        return None
    conn.row_factory = dict_row
    return conn.execute(
        f"SELECT fips, abbrev, name, total_districts, total_enrollment, aggregates_updated_at, "
        f"       {', '.join(f'{col} AS {m}' for m, col in STATE_AVG_COLUMNS.items())} "
        f"  FROM states WHERE fips = %s", (fips,)).fetchone()


def district_report(conn, leaid: str) -> dict:
    """Everything the district page shows: the profile (district_profile, which holds the averages), the district's
    history per metric, its state's row and distribution per metric, and the latest year of each metric."""
    profile = district_profile(conn, leaid)
    fips = conn.execute("SELECT state_fips FROM districts WHERE leaid = %s", (leaid,)).fetchone()["state_fips"]
    return {"district": profile, "history": history_series(conn, leaid),
            "distribution": state_distribution(conn, fips), "state": _averages(conn, fips),
            "latest_year": latest_years(conn)}


def state_report(conn, state: str) -> dict:
    """Everything the state page shows: the state and national rows, the distribution of each metric over
    the state's districts, and the latest year of each metric."""
    fips = resolve_state(conn, state)["fips"]
    return {"state": _averages(conn, fips), "national": _averages(conn, "00"),
            "distribution": state_distribution(conn, fips), "latest_year": latest_years(conn)}


def tier_cutoffs(rows: list[dict]) -> dict[str, object]:
    """The lowest value of each tier among `rows` (value, quartile_state): a district with at least that value is
    in that tier or a higher one (equal values share a tier, so each tier is a range of values)."""
    lowest: dict[str, object] = {}
    for r in rows:
        t = r["quartile_state"]
        if t in TIER_LABELS and (t not in lowest or r["value"] < lowest[t]):
            lowest[t] = r["value"]
    return {t: lowest[t] for t in ("well_below", "below", "above", "well_above") if t in lowest}
