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
# was interrupted (killed, or its connection lost). A loader step's records_failed counts the records it skipped
# (unusable, or of an unknown state), not failures.
RUNS = """
SELECT l.id, l.data_source,
       CASE WHEN l.status = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                 WHERE a.pid = (l.details ->> 'pid')::int AND a.backend_start <= l.started_at)
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
