"""Cleaning rules of loader/normalize.py: each rule on hand-made values, plus a property test that
no JSON value can make the cleaners raise or return a negative number."""
from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loader.api import parse_page
from loader.normalize import (
    SaipeScale,
    SchoolSums,
    SliceContext,
    assess_rows,
    clean_leaid,
    clean_text,
    crdc_school_rows,
    directory_rows,
    finance_rows,
    grad_rows,
    identify,
    numerics,
    parse_number,
    per_pupil,
    percents,
    records_skipped,
    saipe_rows,
    school_id,
    to_int,
    to_numeric,
    to_percent,
    values_nulled,
)
from loader.sources import CRDC_ABSENTEEISM, CRDC_ENROLLMENT, ENDPOINTS, RECORD_FIELDS, SAIPE, SOURCES
from tests.synthetic import World

# The page cleaner of each district-level source's endpoint, with that endpoint's breakdown columns.
PAGE_BUILDERS = {s.endpoint.key: (lambda recs, c, s=s: s.clean(recs, c, s.endpoint.breakdown))
                 for s in SOURCES.values() if s.clean}

STATES = {"10": "DE", "06": "CA"}


def ctx(year=2021, fips="10"):
    return SliceContext(year, fips, STATES)


def one(page_fn, rec, c, *args):
    """The row a page of one record gives, or None."""
    rows = page_fn([rec], c, *args)
    return rows[0] if rows else None


@pytest.mark.parametrize("raw, expected, counted", [
    (12, 12, None), (0, 0, None), (12.5, Decimal("12.5"), None), ("12.5", Decimal("12.5"), None),
    (" 7 ", Decimal("7"), None), (None, None, None),
    (-1, None, "nulled_negative"), (-2, None, "nulled_negative"), (-3.0, None, "nulled_negative"),
    ("-2", None, "nulled_negative"), ("-3", None, "nulled_negative"),
    ("N/A", None, "nulled_junk"), ("<5", None, "nulled_junk"), ("", None, "nulled_junk"),
    (True, None, "nulled_junk"), ([1], None, "nulled_junk"), ({"a": 1}, None, "nulled_junk"),
    (float("nan"), None, "nulled_junk"), (float("inf"), None, "nulled_junk"), ("NaN", None, "nulled_junk"),
])
def test_parse_number(raw, expected, counted):
    counts = Counter()
    assert parse_number(raw, counts) == expected
    assert counts == (Counter({counted: 1}) if counted else Counter())


def test_counts_round_half_away_from_zero_and_must_fit_integer():
    c = Counter()
    assert to_int(10.5, c) == 11 and to_int("2.5", c) == 3 and to_int(2.4999, c) == 2
    assert to_int(2**31 - 1, c) == 2**31 - 1
    assert to_int(2**31, c) is None and to_int(1e20, c) is None
    assert c == Counter({"nulled_out_of_range": 2})


def test_numeric_columns_round_to_cents_and_null_what_does_not_fit():
    c = Counter()
    assert to_numeric(62.455, c, 10) == Decimal("62.46")      # repr(62.455) is '62.455': half away from zero
    assert to_numeric("0.005", c, 5) == Decimal("0.01")
    assert to_numeric(99999999.99, c, 10) == Decimal("99999999.99")
    assert to_numeric(99999999.995, c, 10) is None             # rounds to 100000000.00: no longer fits (10,2)
    assert to_numeric(1e12, c, 10) is None
    assert c["nulled_out_of_range"] == 2


def test_percentages_must_lie_within_0_to_100():
    c = Counter()
    assert to_percent(100, c) == Decimal("100.00")
    assert to_percent(0, c) == Decimal("0.00")
    assert to_percent(100.004, c) == Decimal("100.00")
    assert to_percent(100.01, c) is None and to_percent(250, c) is None
    assert c == Counter({"nulled_out_of_range": 2})


def test_per_pupil_is_current_spending_over_pupils_the_district_pays_for():
    c = Counter()
    assert per_pupil(1_234_567.0, 100, c) == Decimal("12345.67")
    assert per_pupil(1000, 3, c) == Decimal("333.33")
    assert per_pupil(2000, 3, c) == Decimal("666.67")
    assert per_pupil(1000, 0, c) is None and c["no_denominator"] == 1
    assert per_pupil(-1, 100, c) is None and per_pupil(1000, "-2", c) is None
    assert c["nulled_negative"] == 2
    assert per_pupil(1e15, 1, c) is None and c["nulled_out_of_range"] == 1


@pytest.mark.parametrize("raw, leaid, why", [
    ("0100005", "0100005", None), ("100005", "0100005", None), (100005, "0100005", None),
    (None, None, "skipped_no_leaid"), ("", None, "skipped_no_leaid"), ("-1", None, "skipped_no_leaid"),
    (-2, None, "skipped_no_leaid"), ("ABC1234", None, "skipped_bad_leaid"), ("12345678", None, "skipped_bad_leaid"),
    (12.0, None, "skipped_bad_leaid"), ("０１２３", None, "skipped_bad_leaid"),
])
def test_clean_leaid(raw, leaid, why):
    assert clean_leaid(raw) == (leaid, why)


def test_clean_text_drops_codes_and_blanks():
    assert clean_text("  Dover  ") == "Dover"
    assert [clean_text(v) for v in ("-1", "-2", "-3", "", "  ", None, -1, [])] == [None] * 8


def test_all_students_row_needs_every_present_breakdown_column_at_99():
    recs = [{"leaid": "1000001"}, {"leaid": "1000002", "race": 99, "sex": "99", "lep": 99, "homeless": None},
            {"leaid": "1000003", "race": 99, "sex": 1}, {"leaid": "1000004", "race": 99, "econ_disadvantaged": 1},
            {"leaid": "1000005", "grade_edfacts": 8, "race": 99}, {"leaid": "1000006", "military_connected": 1}]
    c = ctx()
    assert identify(recs, c)[1] == ["1000001", "1000002"]
    assert c.counts == Counter(breakdown_rows=4)


def test_the_one_pass_breakdown_check_agrees_with_the_column_by_column_one():
    """identify() first checks a page in one pass (every record has the same breakdown columns, all 99) and
    falls back to column by column; both must keep exactly the all-students rows."""
    tot = {"race": 99, "sex": 99, "lep": 99}
    pages = [
        [dict(tot, leaid="1000001"), dict(tot, leaid="1000002")],                       # one pass: all kept
        [dict(tot, leaid="1000001"), dict(tot, leaid="1000002", homeless=1)],           # a column only later
        [{"leaid": "1000001", "race": 99}, dict(tot, leaid="1000002", sex=2)],          # missing, then not 99
        [dict(tot, leaid="1000001", race="99"), dict(tot, leaid="1000002", race=None)],  # "99" and null: kept
        [dict(tot, leaid="1000001", sex=1)],
    ]
    kept = []
    for recs in pages:
        c = ctx()
        leaids = identify(recs, c, ("race", "sex", "lep", "homeless"))[1]
        kept.append((leaids, c.counts["breakdown_rows"]))
    assert kept == [(["1000001", "1000002"], 0), (["1000001"], 1), (["1000001"], 1),
                    (["1000001", "1000002"], 0), ([], 1)]


def test_directory_row_cleans_every_field():
    c = ctx()
    row = one(directory_rows, {"leaid": "1000002", "year": 2021, "fips": 10, "lea_name": "-2", "enrollment": "-2",
                         "spec_ed_students": -1, "english_language_learners": "N/A", "teachers_total_fte": 1e12,
                         "city_location": None, "city_mailing": "Smyrna", "county_name": "Kent County",
                         "urban_centric_locale": 41, "agency_type": 99999}, c)
    assert row == ("1000002", "10", None, None, None, None, None, "Smyrna", "Kent County", 41, None)
    assert values_nulled(c.counts) == 5
    assert c.counts == Counter(nulled_negative=2, nulled_junk=1, nulled_out_of_range=2)


@pytest.mark.parametrize("rec, reason", [
    ({"year": 2021, "fips": 10}, "skipped_no_leaid"),
    ({"leaid": "X1", "year": 2021}, "skipped_bad_leaid"),
    ({"leaid": "1000001", "year": 2020}, "skipped_wrong_year"),
    ({"leaid": "0300001", "year": 2021, "fips": 3}, "skipped_unknown_state"),
])
def test_unusable_records_are_skipped_and_counted(rec, reason):
    c = ctx()
    assert one(directory_rows, rec, c) is None
    assert c.counts == Counter({reason: 1})
    assert records_skipped(c.counts) == 1


def test_missing_fips_means_the_state_queried_and_string_year_is_fine():
    c = ctx()
    assert one(finance_rows, {"leaid": "1000004", "year": "2021", "exp_current_elsec_total": 500.0,
                        "enrollment_fall_responsible": 4}, c) == ("1000004", "10", Decimal("125.00"))


def test_edfacts_rows_keep_only_the_all_students_row():
    c = ctx()
    base = {"leaid": "1000001", "year": 2021, "fips": 10, "race": 99, "lep": 99, "disability": 99}
    assert one(grad_rows, dict(base, grad_rate_midpt=87), c) == ("1000001", "10", 87)
    assert one(grad_rows, dict(base, race=1, grad_rate_midpt=90), c) is None
    assert one(grad_rows, dict(base, grad_rate_midpt=101), c) == ("1000001", "10", None)
    assert one(assess_rows, dict(base, grade_edfacts=99, math_test_pct_prof_midpt=45.5,
                                 read_test_pct_prof_midpt="-3"), c) == ("1000001", "10", 45.5, None)
    assert c.counts == Counter(breakdown_rows=1, nulled_out_of_range=1, nulled_negative=1)


def test_crdc_school_rows_need_a_school_id():
    c = ctx()
    rec = {"leaid": "1000001", "year": 2021, "fips": 10, "race": 99, "sex": 99, "crdc_id": "A1",
           "students_chronically_absent": 30}
    assert one(crdc_school_rows, rec, c, "a") == (("1000001", "A1"), 30)
    assert one(crdc_school_rows, dict(rec, crdc_id=None, ncessch="100000100001"), c, "a")[0][1] == "100000100001"
    assert one(crdc_school_rows, dict(rec, crdc_id=None), c, "a") is None
    assert one(crdc_school_rows, dict(rec, enrollment_crdc=-3), c, "e") == (("1000001", "A1"), None)
    assert c.counts == Counter(skipped_no_school_id=1, nulled_negative=1)


@pytest.mark.parametrize("raw, canonical", [
    ("0123", "123"), ("123", "123"), (123, "123"), (123.0, "123"), (" 0123 ", "123"), ("123.0", "123"),
    ("000", "0"), ("A0123", "A0123"), (" A1 ", "A1"), ("12.5", "12.5"), ("", None), ("-2", None), (-1, None),
    (None, None), (True, None),
])
def test_school_ids_are_compared_in_one_form(raw, canonical):
    assert school_id(raw) == canonical


def test_a_schools_rows_pair_whether_its_id_comes_as_a_number_or_a_string():
    """One route sends the identifiers as JSON numbers, the other as strings (zero-padded, or a float's text)."""
    c = ctx()
    base = {"leaid": "1000001", "year": 2021, "fips": 10, "race": 99, "sex": 99}
    absent = [dict(base, crdc_id=123, students_chronically_absent=30),
              dict(base, crdc_id=456.0, students_chronically_absent=10),
              dict(base, crdc_id=None, ncessch=100000100789, students_chronically_absent=5)]
    enrolled = [dict(base, crdc_id="0123", enrollment_crdc=300), dict(base, crdc_id=" 456.0 ", enrollment_crdc=100),
                dict(base, crdc_id=None, ncessch="100000100789", enrollment_crdc=50)]
    sums = SchoolSums()
    sums.add("a", crdc_school_rows(absent, c, "a"))
    sums.add("e", crdc_school_rows(enrolled, c, "e"))
    # (leaid, schools, unpaired, absent missing, absent paired, enrollment paired, absent all): all three paired
    assert sums.districts() == [("1000001", 3, 0, 0, 45, 450, 45)]


def test_school_sums_pair_each_schools_count_with_its_enrollment():
    sums = SchoolSums()
    sums.add("a", [(("1", "s1"), 30), (("1", "s2"), None), (("1", "s3"), 20),
                   (("1", "s3"), 15),                          # listed twice: the larger count stays
                   (("2", "t1"), 10), (("3", "u1"), 0)])
    sums.add("e", [(("1", "s1"), 300), (("1", "s2"), 200), (("1", "s9"), 999),   # s9: no absenteeism row
                   (("2", "t1"), None), (("3", "u1"), 50)])
    sums.add("e", [(("1", "s3"), 100), (("1", "s2"), 150)])  # a later page: s2 again, 200 stays
    # (leaid, schools, unpaired, absent missing, absent paired, enrollment paired, absent all)
    assert sums.districts() == [("1", 3, 1, 1, 50, 400, 50), ("2", 1, 1, 0, 0, 0, 10), ("3", 1, 0, 0, 0, 50, 0)]
    assert len(sums) == 5 and sums.has_enrollment()


def test_saipe_scale_follows_the_counts_when_present():
    frac, pct = SaipeScale(), SaipeScale()
    for kids, poor in ((1000, 123), (400, 20), (50, 49)):
        frac.observe(Decimal(poor) / kids, kids, poor)
        pct.observe(Decimal(poor) * 100 / kids, kids, poor)
    assert frac.is_fraction() and not pct.is_fraction()
    assert frac.describe()["saipe_votes_fraction"] == 3 and pct.describe()["saipe_votes_percent"] == 3


def test_saipe_scale_without_counts_uses_the_largest_value():
    s = SaipeScale()
    for v in ("0.12", "0.4", "0.9"):
        s.observe(Decimal(v), None, None)
    assert s.is_fraction()
    s.observe(Decimal("12.5"), None, None)
    assert not s.is_fraction()
    assert not SaipeScale().is_fraction()      # nothing seen: leave values as they are


def test_saipe_row_keeps_the_raw_share_and_nulls_impossible_values():
    c, s = ctx(), SaipeScale()
    base = {"leaid": "1000001", "year": 2021, "fips": 10, "est_population_5_17": 1000,
            "est_population_5_17_poverty": 123}
    assert one(saipe_rows, dict(base, est_population_5_17_poverty_pct=0.123), c, s) == ("1000001", "10", 0.123)
    assert one(saipe_rows, dict(base, est_population_5_17_poverty_pct="0.125"), c, s)[2] == Decimal("0.125")
    assert one(saipe_rows, dict(base, est_population_5_17_poverty_pct=250), c, s)[2] is None
    assert c.counts == Counter(nulled_out_of_range=1)


def test_a_page_is_checked_record_by_record():
    c = ctx()
    recs = [{"leaid": "1000001", "race": 99}, {"leaid": "1000002", "race": 1}, {"leaid": None},
            {"leaid": "1000004", "year": 2019}, {"leaid": 1000005, "fips": 6}, {"leaid": "1000006", "fips": 3}]
    idx, leaids, fips = identify(recs, c)
    assert (idx, leaids, fips) == ([0, 4], ["1000001", "1000005"], ["10", "06"])
    assert c.counts == Counter(breakdown_rows=1, skipped_no_leaid=1, skipped_wrong_year=1, skipped_unknown_state=1)
    assert c.unknown_fips == {"03"}


def test_the_fast_paths_pass_ordinary_values_through_and_clean_the_rest():
    c = Counter()
    assert numerics([12.345, 7, None, -1, "3.5", 1e12], c, 10) == [12.345, 7, None, None, Decimal("3.50"), None]
    assert percents([99.99, 100.004, 100.006, 0.0], c) == [99.99, Decimal("100.00"), None, 0.0]
    assert c == Counter(nulled_negative=1, nulled_out_of_range=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6)


@given(json_values)
def test_no_json_value_breaks_the_cleaners(value):
    c = Counter()
    for v in numerics([value], c, 10) + percents([value], c):
        assert v is None or 0 <= v < 10**8
    for v in (parse_number(value, c), to_int(value, c), to_numeric(value, c, 5), to_percent(value, c)):
        assert v is None or v >= 0
    p = to_percent(value, c)
    assert p is None or p <= 100
    n = to_numeric(value, c, 5)
    assert n is None or (n < 1000 and n == n.quantize(Decimal("0.01")))
    clean_text(value)
    clean_leaid(value)


@given(st.dictionaries(st.sampled_from(["leaid", "year", "fips", "enrollment", "lea_name", "race", "sex",
                                        "teachers_total_fte", "spec_ed_students"]), json_values))
def test_no_record_breaks_a_row_builder(rec):
    c = ctx()
    row = one(directory_rows, rec, c)
    assert row is None or (len(row[0]) == 7 and row[0].isdigit())
    for v in row or ():
        assert not isinstance(v, (int, float, Decimal)) or v >= 0


class _Spy(dict):
    """A record that notes every field the cleaning asks for."""
    asked: set[str] = set()

    def get(self, key, default=None):
        _Spy.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        _Spy.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        _Spy.asked.add(key)
        return super().__contains__(key)


@pytest.mark.parametrize("endpoint, build", [
    *((key, PAGE_BUILDERS[key]) for key in ("ccd_directory", "ccd_finance", "edfacts_grad", "edfacts_assess")),
    ("saipe", lambda recs, c: saipe_rows(recs, c, SaipeScale(), SAIPE.breakdown)),
    ("crdc_chronic_absenteeism", lambda recs, c: crdc_school_rows(recs, c, "a", CRDC_ABSENTEEISM.breakdown)),
    ("crdc_enrollment", lambda recs, c: crdc_school_rows(recs, c, "e", CRDC_ENROLLMENT.breakdown)),
])
def test_the_cleaning_reads_only_the_fields_the_client_decodes(endpoint, build):
    """api.parse_page keeps only RECORD_FIELDS[endpoint] of each record: a field read but not listed would
    silently arrive as missing."""
    world = World({10: 30}, seed=3)
    filters = dict(next(e.filters for e in ENDPOINTS if e.key == endpoint))
    recs = [dict(r) for r in world.records(endpoint, 2017, 10, filters)]
    assert recs
    # every path through the checks: a breakdown row, a wrong year, bad ids, a missing fips, junk values
    odd = dict(recs[0], year=2016, leaid="12x", fips=None, race=1, crdc_id=None, ncessch=None)
    odd.update({k: "-2" for k in recs[0] if k not in ("leaid", "year", "fips")})
    _Spy.asked = set()
    build([_Spy(r) for r in recs + [odd]], SliceContext(2017, "10", STATES))
    assert _Spy.asked and _Spy.asked <= set(RECORD_FIELDS[endpoint]), _Spy.asked - set(RECORD_FIELDS[endpoint])


@pytest.mark.parametrize("endpoint", list(RECORD_FIELDS))
def test_records_cut_to_their_fields_clean_like_whole_records(endpoint):
    """The same page decoded whole and decoded to RECORD_FIELDS gives the same rows and counts."""
    world = World({6: 40}, seed=5)
    filters = dict(next(e.filters for e in ENDPOINTS if e.key == endpoint))
    body = json.dumps({"count": 1, "next": None, "results": world.records(endpoint, 2017, 6, filters)}).encode()
    whole, cut = parse_page(body, "u"), parse_page(body, "u", RECORD_FIELDS[endpoint])
    assert all(set(r) <= set(RECORD_FIELDS[endpoint]) for r in cut["results"])
    build = PAGE_BUILDERS.get(endpoint) or (lambda recs, c: crdc_school_rows(recs, c, "e" if "enrol" in endpoint
                                                                            else "a"))
    if endpoint == "saipe":
        build = lambda recs, c: saipe_rows(recs, c, SaipeScale())   # noqa: E731
    out = []
    for data in (whole, cut):
        c = SliceContext(2017, "06", STATES)
        out.append((build(data["results"], c), c.counts))
    assert out[0] == out[1]
