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


def school_year(fall: int | None) -> str | None:
    """The school year a fall year starts: 2021 -> '2021-22'."""
    return None if fall is None else f"{fall}-{(fall + 1) % 100:02d}"


def leaid_or_suggestions(conn, raw: str) -> str:
    """The LEAID `raw` names (see normalise_leaid); when it is not one, a UserError that lists the districts whose
    name contains its words, so `show portland` leads to the right LEAID."""
    try:
        return normalise_leaid(raw)
    except UserError:
        if not raw.strip() or raw.strip().isdigit():
            raise
    found = find_districts(conn, name=raw, limit=5)
    if not found:
        raise UserError(f"LEAID must be up to 7 digits (e.g. 0622710), got {raw!r}; no district's name contains "
                        f"it either", option="LEAID")
    listed = "; ".join(f"{d['leaid']} {d['name']} ({d['state_abbrev'] or '?'})" for d in found)
    more = found[0]["total"] - len(found)
    raise UserError(f"{raw!r} is not a LEAID; districts named like it: {listed}"
                    + (f" and {more:,} more" if more > 0 else "")
                    + f" (list them: district-benchmarks districts --name {raw.strip()!r})", option="LEAID")


def _like(word: str) -> str:
    """An ILIKE pattern matching `word` anywhere, its wildcards taken literally."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_districts(conn, name: str | None = None, state: str | None = None, limit: int = 50) -> list[dict]:
    """Districts whose name contains every word of `name` (any case), in `state` (postal abbreviation or FIPS
    code), by name: leaid, name, state_abbrev, city, enrollment, and `total` = how many match in all."""
    conn.row_factory = dict_row
    where, params = [], []
    if state:
        fips = conn.execute("SELECT fips FROM states WHERE fips <> '00' AND (abbrev = upper(%s) OR fips = %s)",
                            (state.strip(), state.strip().zfill(2))).fetchone()
        if fips is None:
            raise UserError(f"unknown state {state!r}: use a postal abbreviation (OR) or a FIPS code (41)",
                            option="--state")
        where.append("d.state_fips = %s")
        params.append(fips["fips"])
    for word in (name or "").split():
        where.append("d.name ILIKE %s")
        params.append(_like(word))
    return conn.execute(
        "SELECT d.leaid, d.name, d.state_abbrev, d.city, d.enrollment, count(*) OVER () AS total "
        "  FROM districts d"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY d.name, d.leaid LIMIT %s", (*params, limit)).fetchall()


# Per metric: the row of the view, the metric's years (whatever the district has), the district's rank in its
# state (1 = highest value; ties share a rank) among the state's districts with a value, and how many of its
# peers have a value.
PROFILE = """
SELECT b.metric, b.value, b.value_year, b.state_avg, b.national_avg, b.vs_state, b.vs_national, b.quartile_state,
       b.tier_rank, r.state_rank, r.state_count, b.trend_3yr, b.trend_base_year, b.trend_end_year, b.peer_avg,
       b.vs_peers, pv.peers_with_value, b.unit, b.trend_unit, b.higher_is_better,
       m.value_year AS loaded_value_year, m.trend_base_year AS loaded_trend_base_year,
       m.trend_end_year AS loaded_trend_end_year
  FROM district_benchmarks b
  LEFT JOIN benchmark_metrics m ON m.metric = b.metric
  LEFT JOIN LATERAL (
        SELECT count(o.value) AS state_count,
               CASE WHEN b.value IS NOT NULL THEN count(*) FILTER (WHERE o.value > b.value) + 1 END AS state_rank
          FROM district_benchmarks o
         WHERE o.state_fips = b.state_fips AND b.state_fips <> '00' AND o.metric = b.metric) r ON true
  LEFT JOIN LATERAL (
        SELECT count(v.value) AS peers_with_value
          FROM district_peers p JOIN district_benchmarks v ON v.leaid = p.peer_leaid AND v.metric = b.metric
         WHERE p.leaid = b.leaid) pv ON true
 WHERE b.leaid = %s
 ORDER BY m.position
"""


def _missing(r: dict, head: dict) -> dict[str, str]:
    """Why the cells of a metric row that are NULL are empty, by column (cells explained by a missing value are
    left out)."""
    why: dict[str, str] = {}
    no_state = head.get("state_fips") in (None, "00")
    if r["value"] is None:
        loaded = r["loaded_value_year"]
        why["value"] = (f"not reported for {school_year(loaded)}" if loaded is not None
                        else "no data loaded for this metric")
        return why
    if r["state_avg"] is None:
        why["state_avg"] = why["vs_state"] = "no state" if no_state else "no state average computed"
    if r["quartile_state"] is None:
        why["quartile_state"] = ("no state" if no_state
                                 else "fewer than 4 districts in the state have a value" if (r["state_count"] or 0) < 4
                                 else "not computed yet (district-benchmarks compute)")
    if r["trend_3yr"] is None:
        base, end = r["loaded_trend_base_year"], r["loaded_trend_end_year"]
        why["trend_3yr"] = ("no data loaded for this metric" if end is None
                            else f"only {school_year(end)} loaded" if base is None
                            else f"no {school_year(base)} value to compare with"
                            + (" (or it is 0)" if r["trend_unit"] == "percent change" else ""))
    if r["vs_peers"] is None:
        why["vs_peers"] = why["peer_avg"] = (
            "no peer group" if not head.get("peer_count")
            else f"fewer than 10 peers have a value ({r['peers_with_value']})" if (r["peers_with_value"] or 0) < 10
            else "not computed yet (district-benchmarks compute)")
    return why


def district_profile(conn, leaid: str) -> dict:
    """The district, its number of peers (peer_count), and per metric its value and the school year it is from
    (value_year), averages, differences, tier (tier_rank 1 = well_below .. 4 = well_above) with the district's
    rank in its state (state_rank of state_count; 1 = highest value), trend and the years it compares
    (trend_base_year, trend_end_year), its peers' average (peer_avg = value − vs_peers) and the difference to it
    (vs_peers), the units, and `missing`: why a cell is empty, by column."""
    conn.row_factory = dict_row
    head = conn.execute(
        "SELECT d.leaid, d.name, d.state_abbrev, d.state_fips, s.name AS state_name, d.city, d.enrollment, "
        "       d.children_poverty_percent, d.directory_year, d.updated_at, "
        "       (SELECT count(*) FROM district_peers p WHERE p.leaid = d.leaid) AS peer_count "
        "  FROM districts d LEFT JOIN states s ON s.fips = d.state_fips WHERE d.leaid = %s", (leaid,)).fetchone()
    if head is None:
        raise NotFound(f"no district with LEAID {leaid}")
    rows = conn.execute(PROFILE, (leaid,)).fetchall()
    for r in rows:
        r["missing"] = _missing(r, head)
        for k in ("loaded_value_year", "loaded_trend_base_year", "loaded_trend_end_year", "peers_with_value"):
            r.pop(k)
    head["metrics"] = rows
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


# The last run of each source (and of compute_benchmarks), newest first. A run still 'running' whose process is gone
# was interrupted (killed, or its connection lost); so was one the loader logged as failed because Ctrl-C or SIGTERM
# stopped it (the log's status has no such value). A loader step's records_failed counts the records it skipped
# (unusable, or of an unknown state), not failures.
RUNS = """
SELECT l.id, l.data_source,
       CASE WHEN l.status = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                 WHERE a.pid = (l.details ->> 'pid')::int AND a.backend_start <= l.started_at)
            THEN 'interrupted'
            WHEN l.status = 'failed' AND l.error_message LIKE 'interrupted (%'
            THEN 'interrupted' ELSE l.status END AS status,
       l.records_updated, l.records_failed AS records_skipped, l.started_at, l.completed_at, l.error_message
  FROM (SELECT DISTINCT ON (data_source) * FROM data_refresh_logs
         ORDER BY data_source, started_at DESC, id DESC) l
 ORDER BY l.started_at DESC, l.id DESC
"""


def run_status(conn) -> dict:
    """The number of districts, the last run of each source, and per metric how many districts have a value,
    a tier and a trend, with the school year of the values (value_year)."""
    conn.row_factory = dict_row
    runs = conn.execute(RUNS).fetchall()
    coverage = conn.execute(
        "SELECT b.metric, m.value_year, count(b.value) AS with_value, count(b.quartile_state) AS with_tier, "
        "       count(b.trend_3yr) AS with_trend "
        "  FROM district_benchmarks b LEFT JOIN benchmark_metrics m ON m.metric = b.metric "
        " GROUP BY b.metric, m.value_year, m.position ORDER BY m.position").fetchall()
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
