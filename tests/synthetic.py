"""A deterministic, synthetic Education Data API: records shaped like the real endpoints' (same field names and
JSON types: `leaid` a zero-padded string, `fips` an integer, coded values -1/-2/-3, "-2" strings, nulls), with
made-up districts. Nothing here is real data.

Used by tests/make_sample.py (the shipped sample), tests/fake_api.py and bench/bench_ingest.py.
Every value is a pure function of (seed, state, district, year), so a world can be regenerated page by page.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from loader.sources import FALLBACK_YEARS, parse_years_available

BREAKDOWN_RACES = (1, 2, 3, 4, 5, 6, 7, 99)
BREAKDOWN_SEXES = (1, 2, 99)

STATE_NAMES = {1: "AL", 2: "AK", 4: "AZ", 5: "AR", 6: "CA", 8: "CO", 9: "CT", 10: "DE", 11: "DC", 12: "FL",
               13: "GA", 15: "HI", 16: "ID", 17: "IL", 18: "IN", 19: "IA", 20: "KS", 21: "KY", 22: "LA",
               23: "ME", 24: "MD", 25: "MA", 26: "MI", 27: "MN", 28: "MS", 29: "MO", 30: "MT", 31: "NE",
               32: "NV", 33: "NH", 34: "NJ", 35: "NM", 36: "NY", 37: "NC", 38: "ND", 39: "OH", 40: "OK",
               41: "OR", 42: "PA", 44: "RI", 45: "SC", 46: "SD", 47: "TN", 48: "TX", 49: "UT", 50: "VT",
               51: "VA", 53: "WA", 54: "WV", 55: "WI", 56: "WY", 72: "PR"}

# Roughly the number of LEAs per state in the CCD directory (about 19,000 in all), for national-scale runs.
NATIONAL_DISTRICTS = {1: 180, 2: 54, 4: 690, 5: 290, 6: 1130, 8: 190, 9: 200, 10: 45, 11: 68, 12: 76,
                      13: 230, 15: 1, 16: 180, 17: 1040, 18: 410, 19: 330, 20: 310, 21: 180, 22: 200, 23: 270,
                      24: 25, 25: 400, 26: 890, 27: 560, 28: 160, 29: 570, 30: 480, 31: 260, 32: 20, 33: 290,
                      34: 690, 35: 200, 36: 1030, 37: 330, 38: 220, 39: 1080, 40: 580, 41: 220, 42: 790,
                      44: 65, 45: 100, 46: 170, 47: 150, 48: 1210, 49: 160, 50: 340, 51: 135, 53: 330,
                      54: 57, 55: 460, 56: 60, 72: 1}

_SYL = ("ash", "bel", "bro", "cal", "cedar", "clear", "dun", "elm", "fair", "glen", "green", "har", "high",
        "lake", "lin", "mar", "mill", "north", "oak", "pine", "red", "river", "rock", "salt", "shore", "spring",
        "stone", "sun", "val", "west", "wood", "york")
_SUF = ("ton", "field", "ville", "burg", "dale", "ford", "wood", "port", "view", "land", "brook", "mont")
_KIND = ("Unified", "School District", "Public Schools", "Independent School District", "City Schools",
         "County Schools", "Community Schools", "Charter Academy")


def _place(rng: random.Random) -> str:
    return (rng.choice(_SYL) + rng.choice(_SUF)).title()


@dataclass(frozen=True)
class District:
    fips: int
    index: int
    leaid: str
    name: str
    city: str
    county: str
    county_code: str
    locale: int
    agency_type: int
    enrollment: int          # at the base year 2015
    growth: float            # yearly enrollment growth
    swd: float
    ell: float
    str_ratio: float
    per_pupil: float
    grad: float
    math: float
    read: float
    absent: float
    poverty: float
    schools: int


@dataclass
class World:
    """districts_per_state: {fips (int): number of districts}. `messy`: share of values coded -1/-2/-3 etc."""

    districts_per_state: dict[int, int]
    seed: int = 2024
    messy: float = 0.02
    saipe_scale: str = "fraction"            # or "percent"
    junk_records: bool = True                # per state and year: one record without leaid, one duplicate
    # Records as wide as the real ones (api-samples' variable lists): the finance route's 163 fields (the
    # 147 the cleaning never reads get made-up names of the real names' length) and the CRDC routes' `homeless`
    # and `psenrollment_crdc`. False: the narrower records the shipped sample (tests/make_sample.py) was made of.
    real_width: bool = True
    years: dict[str, set[int]] = field(default_factory=lambda: {k: parse_years_available(v)
                                                                  for k, v in FALLBACK_YEARS.items()})
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ districts
    def districts(self, fips: int) -> list[District]:
        if fips not in self._cache:
            self._cache[fips] = [self._district(fips, i) for i in range(1, self.districts_per_state.get(fips, 0) + 1)]
        return self._cache[fips]

    def _district(self, fips: int, i: int) -> District:
        rng = random.Random(f"{self.seed}:{fips}:{i}")
        enrollment = int(min(600_000, max(40, rng.lognormvariate(7.4, 1.3))))
        place = _place(rng)
        county = _place(rng) + " County"
        return District(
            fips=fips, index=i, leaid=f"{fips:02d}{i:05d}", name=f"{place} {rng.choice(_KIND)}", city=place,
            county=county, county_code=f"{fips:02d}{rng.randrange(1, 200):03d}",
            locale=rng.choice((11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43)),
            agency_type=rng.choice((1, 1, 1, 1, 2, 7)), enrollment=enrollment, growth=rng.uniform(-0.03, 0.03),
            swd=rng.uniform(0.08, 0.20), ell=rng.uniform(0.0, 0.30) ** 1.5, str_ratio=rng.uniform(11, 24),
            per_pupil=rng.uniform(9_000, 24_000), grad=rng.uniform(62, 98), math=rng.uniform(15, 75),
            read=rng.uniform(20, 80), absent=rng.uniform(5, 38), poverty=rng.uniform(0.03, 0.45),
            schools=max(1, min(40, enrollment // 800 + rng.randrange(0, 2))))

    def has(self, endpoint_key: str, year: int) -> bool:
        return year in self.years.get(endpoint_key, set())

    # ------------------------------------------------------------------ helpers
    def _rng(self, *parts) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, *parts))))

    def _messy(self, rng: random.Random, value, coded=(-1, -2, -3)):
        """Mostly `value`; sometimes an API code, null, or the code as a string."""
        r = rng.random()
        if r < self.messy:
            return rng.choice(coded)
        if r < self.messy * 1.25:
            return None
        if r < self.messy * 1.4:
            return str(rng.choice(coded))
        return value

    @staticmethod
    def _enrollment(d: District, year: int) -> int:
        return max(5, round(d.enrollment * (1 + d.growth) ** (year - 2015)))

    @staticmethod
    def _drift(d: District, year: int, base: float, per_year: float) -> float:
        return base + per_year * (year - 2015)

    # ------------------------------------------------------------------ endpoints
    def records(self, endpoint_key: str, year: int, fips: int, filters: dict[str, str] | None = None) -> list[dict]:
        """The rows the API would return for endpoint_key/year?fips=..&filters (all pages together)."""
        filters = filters or {}
        make = getattr(self, f"_{endpoint_key}")
        rows: list[dict] = []
        for d in self.districts(fips):
            rows.extend(make(d, year, filters))
        if self.junk_records and len(rows) >= 10:
            # As in the real data now and then: a row with no leaid, and a district listed twice.
            rows.insert(len(rows) // 2, dict(rows[0], leaid=None))
            rows.append(dict(rows[1]))
        return rows

    def _ccd_directory(self, d: District, year: int, filters) -> list[dict]:
        rng = self._rng("dir", d.leaid, year)
        m = self._messy
        enr = self._enrollment(d, year)
        teachers = round(enr / (d.str_ratio + 0.1 * (year - 2015)), 2)
        st = STATE_NAMES.get(d.fips, "XX")
        zipc = f"{rng.randrange(10000, 99999)}"
        return [{
            "leaid": d.leaid, "year": year, "lea_name": m(rng, d.name, ("-1",)), "fips": d.fips,
            "state_leaid": f"{st}-{d.index:04d}", "street_mailing": f"{rng.randrange(1, 9999)} Main St",
            "city_mailing": d.city, "state_mailing": st, "zip_mailing": zipc, "zip4_mailing": m(rng, "-2", ("-2",)),
            "street_location": f"{rng.randrange(1, 9999)} School Rd", "city_location": m(rng, d.city, ("-1",)),
            "state_location": st, "zip_location": zipc, "zip4_location": "-2",
            "phone": f"({rng.randrange(200, 999)}){rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
            "latitude": round(rng.uniform(25, 48), 6), "longitude": round(rng.uniform(-124, -67), 6),
            "urban_centric_locale": d.locale, "cbsa": str(rng.randrange(10000, 49999)), "cbsa_type": rng.choice((1, 2, -2)),
            "csa": m(rng, str(rng.randrange(100, 600)), ("-2",)), "cmsa": None, "necta": -2,
            "county_code": d.county_code, "county_name": d.county,
            "congress_district_id": d.fips * 100 + rng.randrange(1, 20),
            "state_leg_district_lower": "-2", "state_leg_district_upper": f"{d.fips:02d}{rng.randrange(1, 40):03d}",
            "bureau_indian_education": None, "supervisory_union_number": "-2",
            "agency_type": d.agency_type, "agency_level": rng.choice((1, 2, 3, 4)),
            "boundary_change_indicator": 1, "agency_charter_indicator": 3 if d.agency_type != 7 else 1,
            "lowest_grade_offered": -1, "highest_grade_offered": 12,
            "number_of_schools": d.schools, "enrollment": m(rng, enr),
            "spec_ed_students": m(rng, round(enr * self._drift(d, year, d.swd, 0.002))),
            "english_language_learners": m(rng, round(enr * self._drift(d, year, d.ell, 0.001))),
            "migrant_students": m(rng, round(enr * 0.01)),
            "teachers_prek_fte": m(rng, round(teachers * 0.03, 2)),
            "teachers_kindergarten_fte": round(teachers * 0.08, 2),
            "teachers_elementary_fte": round(teachers * 0.45, 2),
            "teachers_secondary_fte": round(teachers * 0.4, 2), "teachers_ungraded_fte": 0,
            "teachers_total_fte": m(rng, teachers),
            "instructional_aides_fte": round(teachers * 0.3, 2), "coordinators_fte": round(teachers * 0.01, 2),
            "guidance_counselors_elem_fte": -2, "guidance_counselors_sec_fte": -2,
            "guidance_counselors_other_fte": -2, "guidance_counselors_total_fte": round(enr / 400, 2),
            "school_counselors_fte": round(enr / 420, 2), "librarian_specialists_fte": round(d.schools * 0.6, 2),
            "librarian_support_staff_fte": round(d.schools * 0.3, 2), "lea_administrators_fte": round(1 + enr / 3000, 2),
            "lea_admin_support_staff_fte": round(2 + enr / 1500, 2), "lea_staff_total_fte": round(4 + enr / 900, 2),
            "school_administrators_fte": round(d.schools * 1.4, 2), "school_admin_support_staff_fte": round(d.schools * 2, 2),
            "school_staff_total_fte": round(d.schools * 3.5, 2), "support_staff_students_fte": round(enr / 250, 2),
            "school_psychologists_fte": round(enr / 1500, 2), "support_staff_stu_wo_psych_fte": round(enr / 280, 2),
            "support_staff_other_fte": round(enr / 60, 2), "staff_total_fte": round(teachers * 2.1, 2),
            "other_staff_fte": -1,
        }]

    def _ccd_finance(self, d: District, year: int, filters) -> list[dict]:
        rng = self._rng("fin", d.leaid, year)
        m = self._messy
        enr = self._enrollment(d, year)
        pp = d.per_pupil * (1.03 ** (year - 2015))
        exp = float(round(pp * enr))
        rev = exp * rng.uniform(0.98, 1.08)
        return [{
            "leaid": d.leaid, "censusid": f"{d.fips:02d}5{d.index:011d}", "year": year, "fips": d.fips,
            "rev_total": round(rev), "rev_fed_total": round(rev * 0.09), "rev_state_total": round(rev * 0.46),
            "rev_local_total": round(rev * 0.45), "rev_local_prop_tax": m(rng, round(rev * 0.3)),
            "exp_total": round(exp * 1.12), "exp_current_elsec_total": m(rng, exp),
            "exp_current_instruction_total": round(exp * 0.6), "exp_current_supp_serve_total": round(exp * 0.34),
            "salaries_total": round(exp * 0.55), "salaries_instruction": round(exp * 0.38),
            "enrollment_fall_responsible": m(rng, enr),
        } | ({name: (round(exp * share) if kind == "i" else float(round(exp * share)) if kind == "f" else kind)
              for name, share, kind in _FINANCE_DETAIL} if self.real_width else {})]

    def _edfacts_grad(self, d: District, year: int, filters) -> list[dict]:
        rng = self._rng("grad", d.leaid, year)
        total = self._drift(d, year, d.grad, 0.4)
        base = {"leaid": d.leaid, "leaid_num": int(d.leaid), "year": year, "fips": d.fips, "lea_name": d.name,
                "race": 99, "lep": 99, "homeless": 99, "disability": 99, "econ_disadvantaged": 99, "foster_care": 99}
        groups = [{}] + [{"race": r} for r in (1, 2, 3, 4, 5)] + [
            {"econ_disadvantaged": 1}, {"lep": 1}, {"disability": 1}, {"homeless": 1}, {"foster_care": 1}]
        rows = []
        for g in groups:
            row = dict(base, **g)
            if any(str(row.get(k)) != v for k, v in filters.items()):
                continue
            cohort = max(1, round(self._enrollment(d, year) / 13 * (1 if not g else rng.uniform(0.05, 0.5))))
            mid = min(99, max(5, round(total - (rng.uniform(0, 15) if g else 0))))
            lo, hi = (mid - 2, mid + 2) if cohort >= 30 else (max(0, mid - 10), min(100, mid + 9))
            row.update(cohort_num=cohort, grad_rate_low=lo, grad_rate_high=hi,
                       grad_rate_midpt=self._messy(rng, round((lo + hi) / 2)) if not g else round((lo + hi) / 2))
            rows.append(row)
        return rows

    def _edfacts_assess(self, d: District, year: int, filters) -> list[dict]:
        rng = self._rng("asmt", d.leaid, year)
        m = self._messy
        enr = self._enrollment(d, year)
        math_, read = self._drift(d, year, d.math, 0.5), self._drift(d, year, d.read, 0.3)
        def rng3(v):
            lo = max(0, int(v) - 2)
            return lo, min(100, lo + 4), round(lo + 2.0, 1)
        ml, mh, mm = rng3(math_)
        rl, rh, rm = rng3(read)
        return [{
            "leaid": d.leaid, "leaid_num": int(d.leaid), "year": year, "lea_name": d.name, "fips": d.fips,
            "grade_edfacts": 99, "race": 99, "sex": 99, "lep": 99, "homeless": 99, "migrant": 99,
            "disability": 99, "econ_disadvantaged": 99, "foster_care": 99, "military_connected": 99,
            "read_test_num_valid": round(enr * 0.45), "read_test_pct_prof_midpt": m(rng, rm),
            "read_test_pct_prof_high": rh, "read_test_pct_prof_low": rl,
            "math_test_num_valid": round(enr * 0.45), "math_test_pct_prof_midpt": m(rng, mm),
            "math_test_pct_prof_high": mh, "math_test_pct_prof_low": ml,
        }]

    def _crdc_rows(self, d: District, year: int, filters, value_name: str, make_value) -> list[dict]:
        rows = []
        enr = self._enrollment(d, year)
        for j in range(1, d.schools + 1):
            rng = self._rng("crdc", value_name, d.leaid, year, j)
            school_enr = max(10, round(enr / d.schools * rng.uniform(0.7, 1.3)))
            for race in BREAKDOWN_RACES:
                for sex in BREAKDOWN_SEXES:
                    if filters.get("race", str(race)) != str(race) or filters.get("sex", str(sex)) != str(sex):
                        continue
                    share = (1.0 if race == 99 else 1 / 8) * (1.0 if sex == 99 else 0.5)
                    rows.append({
                        "crdc_id": f"{d.leaid}{j:05d}", "year": year, "ncessch": f"{d.leaid}{j:05d}",
                        "leaid": d.leaid, "fips": d.fips, "race": race, "sex": sex, "disability": 99, "lep": 99,
                        value_name: make_value(rng, round(school_enr * share), race == 99 and sex == 99),
                    } | ({"homeless": 99} if self.real_width else {})
                      | ({"psenrollment_crdc": -2} if self.real_width and value_name == "enrollment_crdc" else {}))
        return rows

    def _crdc_chronic_absenteeism(self, d: District, year: int, filters) -> list[dict]:
        rate = max(1.0, self._drift(d, year, d.absent, 0.8)) / 100
        def value(rng, n, total):
            v = round(n * rate * rng.uniform(0.85, 1.15))
            return v if not total or rng.random() > self.messy / 4 else rng.choice((-3, -9, None, "-3"))
        return self._crdc_rows(d, year, filters, "students_chronically_absent", value)

    def _crdc_enrollment(self, d: District, year: int, filters) -> list[dict]:
        def value(rng, n, total):
            return n if not total or rng.random() > self.messy / 4 else rng.choice((-3, None))
        return self._crdc_rows(d, year, filters, "enrollment_crdc", value)

    def _saipe(self, d: District, year: int, filters) -> list[dict]:
        rng = self._rng("saipe", d.leaid, year)
        pop = round(self._enrollment(d, year) * rng.uniform(2.8, 4.2))
        kids = round(pop * rng.uniform(0.14, 0.2))
        share = min(0.95, max(0.01, d.poverty + 0.004 * (year - 2015) * (1 if d.index % 2 else -1)))
        poor = round(kids * share)
        pct = round(poor / kids, 4) if kids else None
        if self.saipe_scale == "percent" and pct is not None:
            pct = round(pct * 100, 2)
        return [{
            "leaid": d.leaid, "year": year, "fips": d.fips, "district_id": f"{d.index:05d}",
            "district_name": d.name, "est_population_total": pop, "est_population_5_17": kids,
            "est_population_5_17_pct": round(kids / pop, 4), "est_population_5_17_poverty": poor,
            "est_population_5_17_poverty_pct": self._messy(rng, pct, (-1,)),
        }]


# The real finance route's other 147 fields (revenues, expenditures, salaries, debt, ... by programme): made-up
# names as long as the real ones (22 characters on average), each a fixed share of the district's spending, as
# an integer, a float (the real route has both) or a constant code.
_FINANCE_DETAIL = tuple(
    (f"{prefix}_detail_{i:02d}", ((i * 37 + j * 11) % 97 + 1) / 1000,
     "i" if (i + j) % 4 else "f" if (i + j) % 8 else -2)
    for j, prefix in enumerate(("rev_fed_state", "rev_state_prog", "rev_local_other", "exp_current_supp",
                                "exp_nonelsec_prog", "outlay_capital", "salaries_supp", "benefits_supp",
                                "payments_other", "debt_longterm", "exp_cares_act"))
    for i in range(1, 15))[:147]

ENDPOINT_KEYS = ("ccd_directory", "ccd_finance", "edfacts_grad", "edfacts_assess", "crdc_chronic_absenteeism",
                 "crdc_enrollment", "saipe")
