"""A deterministic, national-scale synthetic dataset for benchmarking the engine.

About 19,000 districts across the 50 states and DC with the real skew of LEA counts (HI 1, DC ~60, TX ~1,200,
CA ~1,000, ...), ~10 years of history from all six sources in the years each source really has (SPEC §1, §6),
about 900,000 `district_data_history` rows at scale 1. The data is built to exercise the engine's edge cases at
national scale, not only its happy path:

- realistic distributions: enrollment log-normal; SWD 10-20 %; ELL skewed (many 0); absenteeism 5-40 % with a
  post-2020 jump; graduation 60-99; proficiency 10-80 (poverty-correlated); expenditure 8k-30k per pupil;
  child poverty 2-45 %;
- ties: small districts report coarse EDFacts midpoints (multiples of 5 or whole numbers), SAIPE has one decimal,
  so equal values within a state are common;
- gaps: missing district-years, districts that open late or close early, whole state-years missing for a source;
- NULLs and the API's negative codes (-1 missing, -2 not applicable, -3 suppressed) sprinkled over every column;
- enrollment 0, teachers_fte 0 and base-year values of 0;
- deliberate overflow rows (`OVERFLOW_KINDS`), whose results do not fit their numeric(p,2) column: a base
  expenditure of 0.01 (a % change above 999999.99), a base SWD count of 1 in a 100k district, teachers_fte 0.01
  (a ratio above 999999.99), SWD > 10 x enrollment (a percentage above 999.99), an expenditure of 5,000,000 (a
  difference to the state average above 999999.99).

Every value comes from `random.Random` seeded with (seed, state), so a (seed, scale) pair always yields the same
rows. Rows are streamed into PostgreSQL with COPY.

Library:  `load(conninfo, seed=1, scale=1.0, replace=False) -> LoadResult`
CLI:      `python -m bench.generate [--dsn DSN] [--seed N] [--scale F] [--replace]`
"""
from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import click
import psycopg

# (fips, abbrev, LEAs): the CCD's skew of LEA counts per state (incl. charter and regional LEAs), 19,000 in all.
STATES: tuple[tuple[str, str, int], ...] = (
    ("01", "AL", 165), ("02", "AK", 59), ("04", "AZ", 749), ("05", "AR", 284), ("06", "CA", 1040),
    ("08", "CO", 201), ("09", "CT", 217), ("10", "DE", 49), ("11", "DC", 62), ("12", "FL", 82),
    ("13", "GA", 241), ("15", "HI", 1), ("16", "ID", 197), ("17", "IL", 1096), ("18", "IN", 447),
    ("19", "IA", 358), ("20", "KS", 336), ("21", "KY", 191), ("22", "LA", 217), ("23", "ME", 284),
    ("24", "MD", 27), ("25", "MA", 436), ("26", "MI", 999), ("27", "MN", 608), ("28", "MS", 165),
    ("29", "MO", 608), ("30", "MT", 523), ("31", "NE", 273), ("32", "NV", 22), ("33", "NH", 317),
    ("34", "NJ", 738), ("35", "NM", 165), ("36", "NY", 1085), ("37", "NC", 360), ("38", "ND", 230),
    ("39", "OH", 1150), ("40", "OK", 621), ("41", "OR", 217), ("42", "PA", 849), ("44", "RI", 72),
    ("45", "SC", 111), ("46", "SD", 165), ("47", "TN", 165), ("48", "TX", 1200), ("49", "UT", 169),
    ("50", "VT", 326), ("51", "VA", 146), ("53", "WA", 360), ("54", "WV", 62), ("55", "WI", 490),
    ("56", "WY", 65),
)

# The years each source really has in the Education Data API (SPEC §6, endpoints.json), the last ~10 of them.
SOURCE_YEARS: dict[str, tuple[int, ...]] = {
    "ccd_directory": tuple(range(2013, 2023)),
    "ccd_finance": tuple(range(2011, 2021)),              # finance ends 2020
    "edfacts_grad": tuple(range(2010, 2020)),             # 2010-2019
    "edfacts_assess": tuple(range(2010, 2019)) + (2020,),  # 2009-2018 and 2020
    "crdc_absenteeism": (2013, 2015, 2017, 2020, 2021, 2022),
    "saipe": tuple(range(2013, 2023)),
}
ALL_YEARS = tuple(range(2010, 2023))

HISTORY_COLUMNS = ("leaid", "year", "source", "enrollment", "spec_ed_students", "ell_students", "teachers_fte",
                   "graduation_rate", "math_proficiency", "read_proficiency", "expenditure_pp",
                   "chronic_absenteeism_rate", "children_poverty_percent")
DISTRICT_COLUMNS = ("leaid", "name", "state_fips", "state_abbrev", "city")

OVERFLOW_KINDS = ("exp_base_tiny", "swd_base_one", "fte_tiny", "swd_gt_enrollment", "exp_huge")

P_ROW_GAP = 0.04        # a district-year-source row is missing
P_NULL = 0.02           # a value is NULL
P_NEG = 0.008           # a value is a negative API code
P_LATE_OPEN = 0.06      # district opens after the first year
P_EARLY_CLOSE = 0.03    # district stops reporting before the last year
P_ZERO_ENROLL = 0.01    # district reports enrollment 0 in its last years
P_STATE_YEAR_GAP = 0.10  # a state misses one (non-latest) year of a source

_PLACES = ("Adams", "Ash", "Bear", "Bell", "Birch", "Blue", "Brook", "Cedar", "Clay", "Clear", "Cold", "Deer",
           "Eagle", "Elm", "Fair", "Fox", "Glen", "Grand", "Green", "Hill", "Hope", "Iron", "Lake", "Lincoln",
           "Maple", "Mill", "Mount", "North", "Oak", "Pine", "Pleasant", "Red", "River", "Rock", "Salem", "Sand",
           "Silver", "Spring", "Stone", "Sun", "Union", "Valley", "Walnut", "Washington", "West", "White",
           "Willow", "Wood")
_PLACE_ENDS = ("", "field", "ville", "ton", "wood", " Creek", " Falls", " Grove", " Heights", " Park", " Point",
               " Springs", " Valley", "burg", "dale", "ford")
_KINDS = ("School District", "Public Schools", "Unified School District", "Independent School District",
          "County Schools", "Community Schools", "Consolidated School District", "Charter School",
          "City Schools", "Area School District")

NULL = "\\N"


@dataclass
class LoadResult:
    districts: int = 0
    history_rows: int = 0
    overflow_leaids: dict[str, str] = field(default_factory=dict)   # leaid -> overflow kind
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.districts:,} districts, {self.history_rows:,} history rows "
                f"({len(self.overflow_leaids)} overflow fixtures) loaded in {self.seconds:.1f} s")


def state_counts(scale: float) -> list[tuple[str, str, int]]:
    """(fips, abbrev, districts) at `scale`; every state keeps at least one district."""
    if scale <= 0:
        raise ValueError("scale must be > 0")
    return [(f, a, max(1, round(n * scale))) for f, a, n in STATES]


def overflow_plan(scale: float) -> dict[tuple[str, int], str]:
    """Which (state fips, district ordinal) get which overflow kind: spread over the five largest states."""
    per_kind = max(1, round(5 * scale))
    big = sorted(state_counts(scale), key=lambda s: (-s[2], s[0]))[:5]
    plan: dict[tuple[str, int], str] = {}
    slot = 0
    for k, kind in enumerate(OVERFLOW_KINDS):
        for _ in range(per_kind):
            fips, _, n = big[slot % len(big)]
            ordinal = (7 + 13 * (slot // len(big)) + k) % max(n, 1)
            while (fips, ordinal) in plan:
                ordinal = (ordinal + 1) % n
            plan[(fips, ordinal)] = kind
            slot += 1
    return plan


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _f2(x: float) -> str:
    return f"{x:.2f}"


class _Noise:
    """NULLs and negative codes, drawn from the state's generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __call__(self, text: str) -> str:
        r = self.rng.random()
        if r < P_NULL:
            return NULL
        if r < P_NULL + P_NEG:
            return self.rng.choice(("-1", "-2", "-3"))
        return text


def _coarse(rng: random.Random, x: float, enrollment: int) -> str:
    """An EDFacts-like midpoint: small districts get ranges (ties), large ones fine values."""
    if enrollment < 400:
        return _f2(_clamp(round(x / 5) * 5, 0, 100))
    if enrollment < 3000:
        return _f2(_clamp(round(x), 0, 100))
    return _f2(_clamp(round(x * 2) / 2, 0, 100))


def _district_rows(rng: random.Random, fips: str, leaid: str, profile: dict, overflow: str | None,
                   state_gaps: dict[str, int]) -> list[str]:
    """All history rows (COPY text lines) of one district."""
    g = rng.gauss
    noise = _Noise(rng)
    # -- latent traits ---------------------------------------------------------------------------
    enr0 = _clamp(math.exp(g(math.log(1100), 1.25)), 8, 900_000)
    if overflow in ("swd_base_one", "fte_tiny"):
        enr0 = rng.uniform(60_000, 150_000)
    elif overflow in ("swd_gt_enrollment", "exp_huge"):
        enr0 = rng.uniform(60, 400)
    growth = g(0.0, 0.015)
    swd = _clamp(g(0.145, 0.03), 0.04, 0.35)
    swd_drift = g(0.002, 0.002)
    ell = 0.0 if rng.random() < 0.22 else _clamp(math.exp(g(math.log(0.03) + profile["ell"], 1.1)), 0.0, 0.85)
    str_ = _clamp(g(15.5, 3.0), 5, 35)
    poverty = _clamp(math.exp(g(math.log(15) + profile["pov"], 0.45)), 1.5, 55)
    math_p = _clamp(g(47 - (poverty - 15) * 0.8 + profile["prof"], 12), 5, 95)
    read_p = _clamp(math_p + g(5, 5), 5, 95)
    grad = _clamp(g(86 - (poverty - 15) * 0.3, 6), 45, 99)
    has_grad = enr0 > 150 and rng.random() < 0.75
    exp_pp = 10_500 * profile["exp"] * math.exp(g(0, 0.18)) * (1.25 if enr0 < 300 else 1.0)
    absent = _clamp(g(13 + poverty * 0.25 + profile["abs"], 4.5), 2, 45)
    first = ALL_YEARS[0] if rng.random() >= P_LATE_OPEN else rng.choice(ALL_YEARS[2:-2])
    last = ALL_YEARS[-1] if rng.random() >= P_EARLY_CLOSE else rng.choice(ALL_YEARS[4:-1])
    zero_from = rng.choice((2020, 2021, 2022)) if rng.random() < P_ZERO_ENROLL else 9999

    # -- one enrollment path over all years -------------------------------------------------------
    enr: dict[int, int] = {}
    e = enr0
    for y in ALL_YEARS:
        e *= math.exp(growth + g(0, 0.02))
        enr[y] = 0 if y >= zero_from else max(1, int(e))

    lines: list[str] = []

    def row(year: int, source: str, *vals: str) -> None:
        lines.append(f"{leaid}\t{year}\t{source}\t" + "\t".join(vals) + "\n")

    N4 = (NULL,) * 4
    for source, years in SOURCE_YEARS.items():
        for y in years:
            if y < first or y > last or state_gaps.get(source) == y or rng.random() < P_ROW_GAP:
                continue
            n = enr[y]
            t = y - 2013
            if source == "ccd_directory":
                if n == 0:
                    row(y, source, "0", "0", "0", _f2(0), *(NULL,) * 6)
                    continue
                s_cnt = int(n * _clamp(swd + swd_drift * t + g(0, 0.004), 0.01, 0.5))
                e_cnt = int(n * _clamp(ell * (1 + 0.03 * t) + g(0, 0.003), 0, 0.9)) if ell else 0
                fte = round(n / _clamp(str_ + g(0, 0.4), 4, 40), 1 if rng.random() < 0.5 else 2)
                if rng.random() < 0.005:
                    fte = 0.0
                if overflow == "swd_base_one" and y == 2019:
                    s_cnt = 1
                if overflow == "fte_tiny" and y == 2022:
                    fte = 0.01
                if overflow == "swd_gt_enrollment" and y == 2022:
                    s_cnt = n * 20
                row(y, source, noise(str(n)), noise(str(s_cnt)), noise(str(e_cnt)), noise(_f2(fte)),
                    *(NULL,) * 6)
            elif source == "ccd_finance":
                v = exp_pp * (1.03 ** (y - 2011)) * math.exp(g(0, 0.03))
                if overflow == "exp_base_tiny" and y == 2017:
                    v = 0.01
                elif overflow == "exp_huge" and y == 2020:
                    v = 5_000_000
                elif rng.random() < 0.002:
                    v = 0.0
                row(y, source, *N4, NULL, NULL, NULL, noise(_f2(v)), NULL, NULL)
            elif source == "edfacts_grad":
                if not has_grad:
                    continue
                v = _clamp(grad + 0.4 * (y - 2010) + g(0, 2.5), 30, 99)
                row(y, source, *N4, noise(_coarse(rng, v, n)), NULL, NULL, NULL, NULL, NULL)
            elif source == "edfacts_assess":
                shift = -6 if y == 2020 else 0.3 * (y - 2010)
                m = _clamp(math_p + shift + g(0, 3), 1, 99)
                r = _clamp(read_p + shift * 0.7 + g(0, 3), 1, 99)
                row(y, source, *N4, NULL, noise(_coarse(rng, m, n)), noise(_coarse(rng, r, n)), NULL, NULL, NULL)
            elif source == "crdc_absenteeism":
                rate = _clamp(absent + (8 if y >= 2020 else 0) + g(0, 2.0), 0.5, 60)
                if n > 0:
                    rate = round(n * rate / 100) / n * 100   # a count over enrollment: ties in small districts
                row(y, source, *N4, NULL, NULL, NULL, NULL, noise(_f2(min(rate, 100))), NULL)
            else:  # saipe: one decimal
                v = _clamp(poverty * math.exp(g(0, 0.08)), 0.5, 60)
                row(y, source, *N4, NULL, NULL, NULL, NULL, NULL, noise(f"{v:.1f}"))
    return lines


def generate(seed: int = 1, scale: float = 1.0) -> Iterator[tuple[str, list[str], str | None]]:
    """Yield (district COPY line, its history COPY lines, overflow kind or None) for every district."""
    plan = overflow_plan(scale)
    for fips, abbrev, n in state_counts(scale):
        rng = random.Random(f"district-benchmarks:{seed}:{fips}")
        profile = {"ell": rng.gauss(0, 0.6), "pov": rng.gauss(0, 0.25), "prof": rng.gauss(0, 6),
                   "exp": math.exp(rng.gauss(0.05, 0.22)), "abs": rng.gauss(0, 2.5)}
        state_gaps = {src: rng.choice(years[:-1]) for src, years in SOURCE_YEARS.items()
                      if rng.random() < P_STATE_YEAR_GAP}
        number = 0
        for ordinal in range(n):
            number += rng.randint(1, 4)
            leaid = f"{fips}{number:05d}"
            place = rng.choice(_PLACES) + rng.choice(_PLACE_ENDS)
            name = f"{place} {rng.choice(_KINDS)}"
            district = f"{leaid}\t{name}\t{fips}\t{abbrev}\t{place}\n"
            kind = plan.get((fips, ordinal))
            yield district, _district_rows(rng, fips, leaid, profile, kind, state_gaps), kind


def load(conninfo: str, seed: int = 1, scale: float = 1.0, replace: bool = False,
         progress=lambda done, total: None) -> LoadResult:
    """Stream the (seed, scale) dataset into `districts` and `district_data_history` with COPY.

    The tables must be empty unless `replace` (which deletes their rows first). Runs in one transaction and
    ANALYZEs both tables afterwards.
    """
    started = time.perf_counter()
    result = LoadResult()
    total = sum(n for _, _, n in state_counts(scale))
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET synchronous_commit = off")
        if replace:
            conn.execute("TRUNCATE district_data_history, district_peers, districts")
        else:
            busy = conn.execute("SELECT (SELECT count(*) FROM districts) + "
                                "(SELECT count(*) FROM district_data_history)").fetchone()[0]
            if busy:
                raise RuntimeError("districts/district_data_history are not empty; pass replace=True "
                                   "(--replace) to delete their rows first")
        district_lines: list[str] = []
        with conn.cursor() as cur, cur.copy(
                f"COPY district_data_history ({', '.join(HISTORY_COLUMNS)}) FROM STDIN") as copy:
            buf: list[str] = []
            for district, rows, kind in generate(seed, scale):
                district_lines.append(district)
                if kind:
                    result.overflow_leaids[district[:7]] = kind
                buf.extend(rows)
                result.history_rows += len(rows)
                if len(buf) >= 20_000:
                    copy.write("".join(buf))
                    buf.clear()
                    progress(len(district_lines), total)
            copy.write("".join(buf))
        with conn.cursor() as cur, cur.copy(
                f"COPY districts ({', '.join(DISTRICT_COLUMNS)}) FROM STDIN") as copy:
            copy.write("".join(district_lines))
        result.districts = len(district_lines)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE districts")
        conn.execute("ANALYZE district_data_history")
    result.seconds = time.perf_counter() - started
    return result


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", envvar="DATABASE_URL", metavar="DSN",
              help="target database [env: DATABASE_URL]; without it: PG* variables, else the embedded cluster")
@click.option("--seed", type=int, default=1, show_default=True, help="same seed + scale = same rows")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="fraction of the ~19,000 districts (every state keeps at least one)")
@click.option("--replace", is_flag=True, help="delete existing districts and history rows first")
def main(dsn: str | None, seed: int, scale: float, replace: bool) -> None:
    """Load the synthetic national dataset into a migrated database."""
    from loader.db import resolve_conninfo  # the CLI's own connection rules

    conninfo, how = resolve_conninfo(dsn)
    from rich.progress import Progress
    with Progress(transient=True) as bar:
        task = bar.add_task("generating + COPY", total=sum(n for _, _, n in state_counts(scale)))
        try:
            result = load(conninfo, seed, scale, replace, progress=lambda d, t: bar.update(task, completed=d))
        except (RuntimeError, ValueError, psycopg.Error) as exc:
            raise click.ClickException(str(exc).strip().splitlines()[0]) from exc
    click.echo(f"seed {seed}, scale {scale}: {result.summary()} ({how})")


if __name__ == "__main__":
    sys.exit(main())
