"""The engine against the independent reference model (tests/reference_model.py), on random small datasets.

Hypothesis draws a few districts in three states (so some states have >= 4 districts and get tiers, some have
fewer, and the other seeded states have none), history rows for all six sources in random year sets (gaps),
values from small pools (ties) mixed with NULLs, the API's negative codes, 0 (enrollment 0, teachers_fte 0,
base values 0), values whose results overflow their column, stray values in columns a source does not fill,
history of a leaid that is not in `districts`, a district with no state, and stale leftovers in every computed column. Each example is
loaded into the test's database (cleared between examples), `compute_all_benchmarks()` runs, and every district
column and state average must equal the model's; a second run must change nothing.

Peer groups: the datasets above have at most 15 districts (everyone is everyone's peer); a third test draws up to
160 districts with stored current values from small pools (repeated feature vectors, so distances tie exactly),
so that the 40 nearest are chosen on the grid. Peers must be the model's, rank for rank, distances within 1e-9,
and every vs_peers difference equal; a stale peer row and stale differences must be replaced.
"""
from __future__ import annotations

import math
from decimal import Decimal as D

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import reference_model as model

YEARS = tuple(range(2016, 2023))
STATE_POOL = ("01", "06", "11")
ORPHAN = "0199999"

counts = st.one_of(st.sampled_from([None, -1, -2, -3, 0, 0, 1, 2, 5, 10, 100, 20000]), st.integers(0, 3000))
ftes = st.one_of(st.sampled_from([None, -1, D(0), D("0.01"), D("10"), D("12.5")]),
                 st.decimals(0, 400, places=2, allow_nan=False, allow_infinity=False))
rates = st.one_of(st.sampled_from([None, -1, -3, D(0), D(10), D(50), D("50.5"), D(100)]),
                  st.decimals(0, 100, places=2, allow_nan=False, allow_infinity=False))
money = st.one_of(st.sampled_from([None, -2, D(0), D("0.01"), D(10000), D(12000), D(9000000)]),
                  st.decimals(0, 30000, places=2, allow_nan=False, allow_infinity=False))
ratios = st.one_of(st.sampled_from([None, -1, D(0), D(15), D("999999.99")]),
                   st.decimals(0, 40, places=2, allow_nan=False, allow_infinity=False))
# a value in a column the row's source does not fill: must be ignored
strays = st.sampled_from([None] * 9 + [77])

SOURCE_FIELDS = {
    "ccd_directory": {"enrollment": counts, "spec_ed_students": counts, "ell_students": counts,
                      "teachers_fte": ftes},
    "ccd_finance": {"expenditure_pp": money},
    "edfacts_grad": {"graduation_rate": rates},
    "edfacts_assess": {"math_proficiency": rates, "read_proficiency": rates},
    "crdc_absenteeism": {"chronic_absenteeism_rate": rates},
    "saipe": {"children_poverty_percent": rates},
}
CURRENT_STRATEGY = {
    "enrollment": counts, "spec_ed_students": counts, "ell_students": counts, "teachers_fte": ftes,
    "student_teacher_ratio": ratios, "chronic_absenteeism_rate": rates, "graduation_rate_total": rates,
    "math_proficiency_pct": rates, "read_proficiency_pct": rates, "expenditure_per_pupil": money,
    "children_poverty_percent": rates,
}
# all years, a few random years (gaps), or random years plus the usual latest and base years (Y = 2022, B = 2019)
year_sets = st.one_of(st.just(set(YEARS)), st.sets(st.sampled_from(YEARS), max_size=4),
                      st.sets(st.sampled_from(YEARS), max_size=3).map(lambda s: s | {2019, 2022}))
QUARTILE_COLUMNS = tuple(c for c in model.BENCHMARK_COLUMNS if c.endswith("_quartile_state"))


@st.composite
def datasets(draw, with_current: bool = False):
    n = draw(st.integers(0, 14))
    districts = [{"leaid": f"{fips}{i:05d}", "state_fips": fips}
                 for i, fips in enumerate(draw(st.lists(st.sampled_from(STATE_POOL[:1] * 2 + STATE_POOL), min_size=n, max_size=n)))]
    if draw(st.integers(0, 4)) == 0:   # a district whose state is unknown (or the nation): national only
        districts.append({"leaid": "0200999", "state_fips": draw(st.sampled_from([None, "00"]))})
    leaids = [d["leaid"] for d in districts] + ([ORPHAN] if draw(st.booleans()) else [])
    history = []
    for leaid in leaids:
        for source, fields in SOURCE_FIELDS.items():
            years = draw(year_sets)
            for year in sorted(years):
                row = {"leaid": leaid, "year": year, "source": source}
                for col in model.HISTORY_VALUE_COLUMNS:
                    row[col] = draw(fields[col]) if col in fields else draw(strays)
                history.append(row)
    current = None
    if with_current:
        current = {d["leaid"]: {col: draw(strategy) for col, strategy in CURRENT_STRATEGY.items()}
                   for d in districts}
    return {"districts": districts, "history": history, "current": current, "stale": draw(st.booleans())}


def load(conn: psycopg.Connection, data: dict) -> None:
    """Replace the test database's data with `data`; stale leftovers in every computed column if asked."""
    conn.execute("TRUNCATE district_data_history, district_peers, districts, data_refresh_logs")
    stale = data["stale"]
    conn.execute("UPDATE states SET " + ", ".join(
        f"{c} = {'7' if stale else 'NULL'}" for c in model.STATE_COLUMNS))
    with conn.cursor() as cur:
        with cur.copy("COPY districts (leaid, name, state_fips) FROM STDIN") as cp:
            for d in data["districts"]:
                cp.write_row((d["leaid"], f"District {d['leaid']}", d["state_fips"]))
        cols = ("leaid", "year", "source") + model.HISTORY_VALUE_COLUMNS
        with cur.copy(f"COPY district_data_history ({', '.join(cols)}) FROM STDIN") as cp:
            for r in data["history"]:
                cp.write_row(tuple(r[c] for c in cols))
    if stale:
        numeric = [c for c in model.CURRENT_COLUMNS + model.BENCHMARK_COLUMNS + model.PEER_COLUMNS
                   if c not in QUARTILE_COLUMNS]
        conn.execute("UPDATE districts SET " + ", ".join(
            [f"{c} = 3" for c in numeric] + [f"{c} = 'above'" for c in QUARTILE_COLUMNS]))
        conn.execute("INSERT INTO district_peers (leaid, peer_leaid, peer_rank, distance) "
                     "SELECT a.leaid, b.leaid, 1, 0.5 FROM districts a JOIN districts b ON b.leaid > a.leaid LIMIT 1")
    if data["current"] is not None:
        with conn.cursor() as cur:
            for leaid, values in data["current"].items():
                cur.execute("UPDATE districts SET " + ", ".join(f"{c} = %s" for c in values) + " WHERE leaid = %s",
                            (*values.values(), leaid))


YEAR_COLUMNS = ("value_year", "trend_base_year", "trend_end_year")


def fetch(conn: psycopg.Connection) -> tuple[dict, dict]:
    dcols = model.CURRENT_COLUMNS + model.BENCHMARK_COLUMNS + model.PEER_COLUMNS
    districts = {r[0]: dict(zip(dcols, r[1:])) for r in conn.execute(
        f"SELECT leaid, {', '.join(dcols)} FROM districts")}
    states = {r[0]: dict(zip(model.STATE_COLUMNS, r[1:])) for r in conn.execute(
        f"SELECT fips, {', '.join(model.STATE_COLUMNS)} FROM states")}
    return districts, states


def differences(sql: dict, expected: dict, what: str) -> list[str]:
    out = []
    assert set(sql) == set(expected), f"{what}: keys differ"
    for key in sorted(expected):
        for col, want in expected[key].items():
            got = sql[key][col]
            if got != want:   # Decimal('1.50') == Decimal('1.5') == ... ; None only equals None
                out.append(f"{what} {key}.{col}: SQL {got!r}, model {want!r}")
    return out


def fetch_peers(conn: psycopg.Connection) -> dict[str, list[tuple[str, int, float]]]:
    peers: dict[str, list[tuple[str, int, float]]] = {}
    for leaid, peer, rank, distance in conn.execute(
            "SELECT leaid, peer_leaid, peer_rank, distance FROM district_peers ORDER BY leaid, peer_rank"):
        peers.setdefault(leaid, []).append((peer, rank, distance))
    return peers


def peer_differences(sql: dict, expected: dict) -> list[str]:
    """Same districts, the same peer at every rank, distances within 1e-9."""
    out = []
    for leaid in sorted(set(sql) | set(expected)):
        got, want = sql.get(leaid, []), expected.get(leaid, [])
        if [(p, r) for p, r, _ in got] != [(p, r) for p, r, _ in want]:
            out.append(f"peers of {leaid}: SQL {[p for p, _, _ in got]}, model {[p for p, _, _ in want]}")
        elif any(abs(a[2] - b[2]) > 1e-9 for a, b in zip(got, want)):
            out.append(f"distances of {leaid}: SQL {[d for _, _, d in got]}, model {[d for _, _, d in want]}")
    return out


def check_against_model(conn: psycopg.Connection, data: dict, refresh: bool) -> None:
    load(conn, data)
    states = [r[0] for r in conn.execute("SELECT fips FROM states")]
    expected = model.compute_all(data["history"], data["districts"], states, data["current"])
    summary = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh,)).fetchone()[0]
    districts, state_rows = fetch(conn)
    diffs = differences(districts, expected.districts, "district") + differences(state_rows, expected.states, "state")
    diffs += peer_differences(fetch_peers(conn), expected.peers)
    assert not diffs, f"{len(diffs)} differences:\n" + "\n".join(diffs[:40])
    assert summary["out_of_range"] == expected.out_of_range, (summary, expected.overflows)
    years = {r[0]: dict(zip(YEAR_COLUMNS, r[1:])) for r in conn.execute(
        f"SELECT metric, {', '.join(YEAR_COLUMNS)} FROM benchmark_metrics")}
    if not refresh:                 # the value years stay with the stored current values
        years = {m: {k: v for k, v in y.items() if k != "value_year"} for m, y in years.items()}
    assert years == expected.years

    again = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh,)).fetchone()[0]
    assert (again["districts_changed"], again["states_changed"]) == (0, 0), again
    assert again["steps"]["peer_groups"]["rows_changed"] == 0, again
    assert fetch(conn) == (districts, state_rows)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets())
def test_compute_all_benchmarks_matches_reference_model(conn, data):
    check_against_model(conn, data, refresh=True)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(with_current=True))
def test_without_refresh_uses_stored_current_values_and_ignores_negatives(conn, data):
    check_against_model(conn, data, refresh=False)


# enough districts for the 40 nearest to be a choice: features from small pools (repeated vectors tie exactly),
# negative codes and NULLs in features and values
peer_counts = st.sampled_from([None, -1, 0, 5, 40, 400, 400, 401, 4000, 4000, 90000])
peer_rates = st.one_of(st.sampled_from([None, -3, D(0), D("10.5"), D(25), D(100)]),
                       st.decimals(0, 100, places=2, allow_nan=False, allow_infinity=False))


@st.composite
def peer_datasets(draw):
    n = draw(st.integers(0, 3).flatmap(lambda k: st.integers(0, 50) if k == 0 else st.integers(110, 160)))
    districts = [{"leaid": f"{fips}{i:05d}", "state_fips": fips}
                 for i, fips in enumerate(draw(st.lists(st.sampled_from(STATE_POOL), min_size=n, max_size=n)))]
    current = {}
    for d in districts:
        enrollment = draw(peer_counts)
        current[d["leaid"]] = {
            "enrollment": enrollment,
            "spec_ed_students": draw(st.sampled_from([None, -1, 0, 10, 20, 20, 25, 60]))
            if enrollment not in (None, -1, 0) else None,
            "ell_students": draw(st.sampled_from([None, 0, 0, 1, 5, 5, 30])) if enrollment not in (None, -1, 0) else None,
            "teachers_fte": draw(st.sampled_from([None, D(10), D("12.5"), D(300)])),
            "student_teacher_ratio": draw(ratios),
            "chronic_absenteeism_rate": draw(peer_rates), "graduation_rate_total": draw(peer_rates),
            "math_proficiency_pct": draw(peer_rates), "read_proficiency_pct": draw(peer_rates),
            "expenditure_per_pupil": draw(money),
            "children_poverty_percent": draw(st.sampled_from([None, -1, D(5), D("12.3"), D(20), D(20), D(31), D(8)])),
        }
    return {"districts": districts, "history": [], "current": current, "stale": draw(st.booleans())}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=peer_datasets())
def test_peer_groups_match_reference_model(conn, data):
    check_against_model(conn, data, refresh=False)


# -- the model itself, on hand-computed cases (so that a wrong model cannot agree with a wrong engine) ------

def _hist(leaid, year, source, **values):
    return {"leaid": leaid, "year": year, "source": source,
            **{c: values.get(c) for c in model.HISTORY_VALUE_COLUMNS}}


def test_model_tiers_give_equal_values_the_same_tier():
    peers = [D(1), D(2), D(2), D(2), D(9)]
    # PR: 1 -> 0.5/5 = .1; 2 -> (1 + 1.5)/5 = .5; 9 -> 4.5/5 = .9
    assert [model.tier(v, peers) for v in peers] == ["well_below", "above", "above", "above", "well_above"]
    assert model.tier(D(1), [D(1), D(2), D(3)]) is None          # n < 4
    assert [model.tier(v, [D(1), D(2), D(3), D(4)]) for v in (D(1), D(2), D(3), D(4))] == \
        ["well_below", "below", "above", "well_above"]         # .125 .375 .625 .875


def test_model_current_values_averages_trends_and_deltas_by_hand():
    history = [
        # district A: directory 2018 and 2021; 2021 is the latest directory year
        _hist("0100001", 2018, "ccd_directory", enrollment=100, spec_ed_students=10, ell_students=0, teachers_fte=D(10)),
        _hist("0100001", 2021, "ccd_directory", enrollment=200, spec_ed_students=15, ell_students=4, teachers_fte=D(8)),
        # district B: enrollment 300 in 2021, teachers missing (-1), SWD suppressed (-3)
        _hist("0100002", 2021, "ccd_directory", enrollment=300, spec_ed_students=-3, ell_students=30, teachers_fte=-1),
        _hist("0100001", 2017, "ccd_finance", expenditure_pp=D("0.01")),
        _hist("0100001", 2020, "ccd_finance", expenditure_pp=D(12000)),
        _hist("0100002", 2020, "ccd_finance", expenditure_pp=D(9000)),
        _hist("0100001", 2020, "crdc_absenteeism", chronic_absenteeism_rate=D(10)),
        _hist("0100001", 2021, "crdc_absenteeism", chronic_absenteeism_rate=D("12.5")),
        _hist("0100002", 2021, "crdc_absenteeism", chronic_absenteeism_rate=D(20)),
    ]
    districts = [{"leaid": "0100001", "state_fips": "01"}, {"leaid": "0100002", "state_fips": "01"}]
    r = model.compute_all(history, districts, ["00", "01", "02"])
    a, b = r.districts["0100001"], r.districts["0100002"]
    assert (a["enrollment"], a["student_teacher_ratio"], b["student_teacher_ratio"]) == (200, D(25), None)
    assert (a["swd_pct"], a["ell_pct"], b["swd_pct"], b["ell_pct"]) == (D("7.5"), D(2), None, D(10))
    # trends: directory Y = 2021, B = max(2018, 2018) = 2018; SWD 10 -> 15 = +50 %; ELL base 0 -> NULL
    assert (a["swd_trend_3yr"], a["ell_trend_3yr"], a["student_teacher_ratio_trend_3yr"]) == (D(50), None, D(15))
    # finance: 0.01 -> 12000 is +119999900 %: does not fit numeric(8,2)
    assert a["expenditure_pp_trend_3yr"] is None and ("districts", "0100001", "expenditure_pp_trend_3yr") in r.overflows
    # absenteeism: Y = 2021, B = 2020 (latest earlier year with a rate): 12.5 - 10
    assert (a["absenteeism_trend_3yr"], b["absenteeism_trend_3yr"]) == (D("2.5"), None)
    s = r.states["01"]
    # weighted absenteeism (12.5*200 + 20*300) / 500 = 17; expenditure (12000*200 + 9000*300)/500 = 10200
    assert (s["avg_chronic_absenteeism_rate"], s["avg_expenditure_per_pupil"]) == (D(17), D(10200))
    # SWD share only over districts with a count: 15 / 200; ELL (4 + 30) / 500
    assert (s["avg_swd_pct"], s["avg_ell_pct"], s["avg_student_teacher_ratio"]) == (D("7.5"), D("6.8"), D(25))
    assert (s["avg_enrollment"], s["total_districts"], s["total_enrollment"]) == (250, 2, 500)
    assert r.states["02"] == {**{c: None for c in model.STATE_COLUMNS}, "total_districts": 0, "total_enrollment": 0}
    assert r.states["00"] == s
    assert (a["absenteeism_vs_state"], b["absenteeism_vs_national"], b["ell_pct_vs_state"]) == (D("-4.5"), D(3), D("3.2"))
    assert a["absenteeism_quartile_state"] is None               # only 2 districts
    # the years: directory 2018/2021 (teachers -1 in 2021 for B only: A's 8 counts), finance 2017/2020, CRDC 2020/2021
    assert r.years["student_teacher_ratio"] == {"value_year": 2021, "trend_base_year": 2018, "trend_end_year": 2021}
    assert r.years["expenditure_pp"] == {"value_year": 2020, "trend_base_year": 2017, "trend_end_year": 2020}
    assert r.years["absenteeism"] == {"value_year": 2021, "trend_base_year": 2020, "trend_end_year": 2021}
    assert r.years["graduation"] == {"value_year": None, "trend_base_year": None, "trend_end_year": None}


def test_model_peer_groups_by_hand():
    # five districts that differ only in child poverty 10..50: the other features have no spread and are left out,
    # z = (x - 30) / sqrt(200); the middle one is equally far from its neighbours: ranked by leaid
    values = {f"010000{i}": {"enrollment": 100, "children_poverty_percent": D(10 * i), "ell_pct": D(0),
                             "swd_pct": D(12), **{col: None for col, _ in model.METRICS.values()
                                                  if col not in ("swd_pct", "ell_pct")}}
              for i in range(1, 6)}
    values["0100009"] = {**values["0100001"], "children_poverty_percent": D(-1)}   # negative: not eligible
    m = model._Model([], [{"leaid": k} for k in values], [], None)
    m.peer_groups(values)
    peers = m.result.peers
    assert [p for p, _, _ in peers["0100003"]] == ["0100002", "0100004", "0100001", "0100005"]
    assert abs(peers["0100003"][0][2] - 10 / math.sqrt(200)) < 1e-12
    assert "0100009" not in peers and all("0100009" not in [p for p, _, _ in v] for v in peers.values())
    assert m.result.districts["0100003"]["swd_pct_vs_peers"] is None        # 4 peers: fewer than 10 with a value


def test_model_peer_differences_by_hand():
    # twelve districts, each the others' peer: math 10..110 and a negative (missing) one
    values = {f"02000{i:02d}": {"enrollment": 1000 + i, "children_poverty_percent": D(i), "ell_pct": D(1),
                                "swd_pct": D(10), "chronic_absenteeism_rate": None, "graduation_rate_total": None,
                                "student_teacher_ratio": None, "read_proficiency_pct": None,
                                "expenditure_per_pupil": D(5000000) if i == 1 else D(10000),
                                "math_proficiency_pct": D(-2) if i == 12 else D(10 * i)}
              for i in range(1, 13)}
    m = model._Model([], [{"leaid": k} for k in values], [], None)
    m.peer_groups(values)
    d = m.result.districts
    assert (d["0200001"]["math_proficiency_vs_peers"], d["0200012"]["math_proficiency_vs_peers"]) == (D(-55), None)
    assert d["0200001"]["expenditure_pp_vs_peers"] is None                   # 4,990,000 does not fit
    assert ("districts", "0200001", "expenditure_pp_vs_peers") in m.result.overflows
    assert d["0200002"]["expenditure_pp_vs_peers"] == D("-453636.36")        # 10000 - 5100000 / 11
