"""The built-in synthetic Amsterdam sample: a landing zone that follows DESIGN.md §4 exactly.

Real: the 110 Amsterdam wijken with their 2024 resident totals and sex split (CBS 85984NED,
assets/reference/). Synthetic, and labelled so in the truth file: origin × age structure per wijk,
the illustrative wijk → basisteam mapping, every person and every query.

The generator is pure and deterministic by seed, and vectorised: queries are drawn per person
(Poisson with a gamma frailty, so some people are checked again and again) and per month, so tens
of millions of queries fit in memory one month at a time.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from assets.paths import TRUTH_FILE
from assets.schema import (
    AGE_BAND_LOWER,
    AGE_BANDS,
    ORIGIN_CODES,
    PERSON_QUERIES,
    PLATE_QUERIES,
    QUERY_REASONS,
    TIMEZONE,
)
from assets.stats.sun import tag_darkness

SAMPLE_YEAR = 2025
POPULATION_YEAR = 2024

# NOTE: illustrative only. Each GGW-gebied goes to one of 13 made-up basisteams; the police
# supply the real mapping as team_areas.csv.
TEAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AMS-C1": ("Centrum-West (illustratief)", ("Centrum-West",)),
    "AMS-C2": ("Centrum-Oost (illustratief)", ("Centrum-Oost",)),
    "AMS-W1": ("Westerpark en Bos en Lommer (illustratief)", ("Westerpark", "Bos en Lommer", "Westpoort")),
    "AMS-W2": ("Oud-West en De Baarsjes (illustratief)", ("Oud West / De Baarsjes",)),
    "AMS-NW1": ("Geuzenveld, Slotermeer en Osdorp (illustratief)", ("Geuzenveld-Slotermeer-Sloterdijken", "Osdorp")),
    "AMS-NW2": ("Slotervaart en Sloten (illustratief)", ("Slotervaart", "De Aker, Sloten en Nieuw Sloten")),
    "AMS-Z1": ("Oud-Zuid en Zuidas (illustratief)", ("Oud Zuid", "Buitenveldert / Zuidas")),
    "AMS-Z2": ("De Pijp en Rivierenbuurt (illustratief)", ("De Pijp / Rivierenbuurt",)),
    "AMS-O1": ("Oud-Oost en Watergraafsmeer (illustratief)", ("Oud-Oost", "Watergraafsmeer")),
    "AMS-O2": ("Indische Buurt en IJburg (illustratief)", ("Indische Buurt / Oostelijk Havengebied", "IJburg / Eiland Zeeburg")),
    "AMS-N1": ("Noord (illustratief)", ("Oud-Noord", "Oost", "West")),
    "AMS-ZO1": ("Zuidoost (illustratief)", ("Bijlmer Centrum", "Bijlmer Oost", "Gaasperdam")),
    "AMS-WS1": ("Weesp (illustratief)", ("Weesp",)),
}

# NOTE: city-level shares for Amsterdam on 1 January 2023 (shared/external/README.md): 41% Dutch
# origin, 16.7% European (12.5% born abroad + ~4.2% second generation), 42.3% from outside Europe
# (24.6% + 17.7%). The split of the outside-Europe share over the eight origins is our own rough,
# documented guess; it is synthetic and says so.
CITY_ORIGIN_SHARES = {
    "NL": 0.410, "EU": 0.167, "TR": 0.053, "MA": 0.090, "SR": 0.080,
    "CW": 0.016, "ID": 0.026, "AF": 0.048, "AS": 0.070, "AM": 0.040,
}
# Tilt of each origin's share per stadsdeel (then renormalised within the wijk).
STADSDEEL_TILT = {
    "Stadsdeel Centrum": {"NL": 1.5, "EU": 1.6, "default": 0.45},
    "Stadsdeel Zuid": {"NL": 1.4, "EU": 1.4, "default": 0.55},
    "Stadsdeel Oost": {"NL": 1.1, "default": 0.95},
    "Stadsdeel West": {"NL": 1.0, "MA": 1.4, "TR": 1.4, "default": 0.9},
    "Stadsdeel Nieuw-West": {"NL": 0.55, "MA": 2.4, "TR": 2.0, "default": 1.1},
    "Stadsdeel Noord": {"NL": 0.9, "default": 1.15},
    "Stadsdeel Zuidoost": {"NL": 0.35, "SR": 3.0, "AF": 3.0, "CW": 2.5, "default": 0.8},
    "Weesp": {"NL": 1.8, "default": 0.35},
    "Westpoort": {"default": 1.0},
}
# Age-band shares (0-14, 15-24, 25-44, 45-64, 65+) per origin: minority origins are younger.
AGE_SHARES = {
    "NL": (0.13, 0.09, 0.32, 0.26, 0.20),
    "EU": (0.10, 0.10, 0.50, 0.20, 0.10),
    "ID": (0.08, 0.07, 0.25, 0.30, 0.30),
    "SR": (0.15, 0.13, 0.30, 0.27, 0.15),
    "default": (0.22, 0.17, 0.33, 0.21, 0.07),
}
# Relative query rate by sex × age band (police contact concentrates on young men).
SEX_AGE_RATE = {
    "M": (0.05, 3.0, 1.8, 0.8, 0.2),
    "V": (0.02, 0.8, 0.5, 0.25, 0.07),
}
# Car holding probability by age band (plate holders), same for both sexes.
CAR_HOLDING = (0.0, 0.10, 0.40, 0.50, 0.35)
# Time-of-day weight per local clock hour 0..23 (evenings and nights busy, early morning quiet).
HOUR_WEIGHTS = (
    6, 5, 4, 3, 2, 2, 2, 3, 4, 5, 5, 6, 6, 6, 7, 8, 8, 8, 8, 8, 8, 9, 9, 8,
)
# Policing intensity per team (residents' rate multiplier and attraction of visitors' queries).
TEAM_INTENSITY = {"AMS-C1": 1.6, "AMS-C2": 1.5, "AMS-ZO1": 1.3, "AMS-NW1": 1.2, "AMS-WS1": 0.6}
TEAM_ATTRACTION = {"AMS-C1": 6.0, "AMS-C2": 5.0, "AMS-Z1": 1.5, "AMS-Z2": 1.5, "AMS-W2": 1.5}


@dataclass(frozen=True)
class SampleSpec:
    """What the sample injects. Defaults give a few hundred thousand queries a year."""

    seed: int = 20250101
    months: int = 12
    person_queries: int = 300_000
    """Expected person queries over all months."""
    plate_queries: int = 200_000
    """Expected licence-plate queries over all months."""
    true_ratios: dict[str, float] = field(
        default_factory=lambda: {
            "NL": 1.0, "EU": 1.1, "TR": 1.4, "MA": 1.9, "SR": 1.6,
            "CW": 1.7, "ID": 1.0, "AF": 1.5, "AS": 1.2, "AM": 1.3,
        }
    )
    """Per-person query rate ratio vs NL at equal sex, age band and residence team."""
    team_overrides: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"AMS-W2": {"MA": 3.0}}
    )
    """Team-specific true ratios replacing `true_ratios` for residents of that team."""
    hit_rates: dict[str, float] = field(
        default_factory=lambda: {"default": 0.12, "MA": 0.08, "SR": 0.09, "TR": 0.10}
    )
    """Probability that a query with a filled-in hit field returns an alert, per origin."""
    dark_keep: dict[str, float] = field(default_factory=lambda: {"MA": 0.7})
    """Plate queries of holders of this origin in darkness are kept with this probability:
    the veil-of-darkness odds ratio is exactly this (log of it is the true γ)."""
    resident_share_home: float = 0.75
    """Share of a resident's queries that happen in their own team's area."""
    visitor_share: float = 0.15
    """Share of person queries of people not living in the covered area."""
    unidentified_share: float = 0.03
    """Share of person queries with no identified subject."""
    unlinked_share: float = 0.01
    """Share of pseudonyms that CBS cannot link (absent from persons)."""
    company_plate_share: float = 0.25
    """Share of plate queries of vehicles without a natural-person holder."""
    hit_missing_share: float = 0.4
    frailty_shape: float = 0.5
    """Gamma shape of the per-person propensity (mean 1): smaller = more repeat checks."""

    def without_effects(self) -> SampleSpec:
        """The same sample with no origin effect, no darkness effect and equal hit rates."""
        return replace(
            self,
            true_ratios=dict.fromkeys(ORIGIN_CODES, 1.0),
            team_overrides={},
            hit_rates={"default": 0.12},
            dark_keep={},
        )


def read_wijken() -> pl.DataFrame:
    """One row per Amsterdam wijk: code, name, gebied, stadsdeel, residents, men, women (CBS 2024)."""
    path = resources.files("assets") / "reference" / "wijken_2024.csv"
    frame = pl.read_csv(path.read_bytes(), separator=";")
    return (
        frame.filter(pl.col("cbs_code").str.starts_with("WK"))
        .select(
            wijk_code=pl.col("cbs_code"),
            wijk_name=pl.col("wijknaam"),
            gebied=pl.col("gebied_ggw").fill_null(""),
            stadsdeel=pl.col("stadsdeel").fill_null(""),
            residents=pl.col("AantalInwoners_5").cast(pl.Int64),
            men=pl.col("Mannen_6").cast(pl.Int64),
            women=pl.col("Vrouwen_7").cast(pl.Int64),
        )
        .sort("wijk_code")
    )


def read_buurten() -> pl.DataFrame:
    """One row per Amsterdam buurt (2025 code list): buurt_code, wijk_code."""
    path = resources.files("assets") / "reference" / "buurten_2025.csv"
    frame = pl.read_csv(path.read_bytes(), separator=";", schema_overrides={"Buurt2025": pl.String})
    return frame.select(
        buurt_code="BU" + pl.col("Buurt2025"),
        wijk_code="WK" + pl.col("Buurt2025").str.slice(0, 6),
    ).sort("buurt_code")


def build_team_areas(wijken: pl.DataFrame) -> pl.DataFrame:
    """One row per wijk: the illustrative basisteam covering it (team_areas.csv of DESIGN.md §4)."""
    gebied_team = {g: t for t, (_, gebieden) in TEAMS.items() for g in gebieden}
    team_names = {t: name for t, (name, _) in TEAMS.items()}
    unmapped = sorted(set(wijken["gebied"]) - set(gebied_team))
    if unmapped:
        raise ValueError(f"gebieden without an illustrative team: {unmapped}")
    return (
        wijken.select(
            team_code=pl.col("gebied").replace_strict(gebied_team),
            wijk_code="wijk_code",
        )
        .with_columns(team_name=pl.col("team_code").replace_strict(team_names))
        .select("team_code", "team_name", "wijk_code")
        .sort("wijk_code")
    )


def build_population_cells(wijken: pl.DataFrame) -> pl.DataFrame:
    """One row per wijk × sex × age band × origin: synthetic resident count (integer, unrounded).

    Origin shares are the city-level shares tilted per stadsdeel; age structure per origin;
    sex split per wijk is real (CBS). Counts are allocated by largest remainder so that each
    wijk's total equals its real CBS resident count.
    """
    rows = []
    for w in wijken.iter_rows(named=True):
        tilt = STADSDEEL_TILT.get(w["stadsdeel"], {"default": 1.0})
        origin_w = np.array(
            [CITY_ORIGIN_SHARES[o] * tilt.get(o, tilt["default"]) for o in ORIGIN_CODES]
        )
        origin_w /= origin_w.sum()
        male = w["men"] / max(w["residents"], 1)
        shares = []
        keys = []
        for oi, origin in enumerate(ORIGIN_CODES):
            ages = np.array(AGE_SHARES.get(origin, AGE_SHARES["default"]))
            for sex, s_share in (("M", male), ("V", 1 - male)):
                for ai, band in enumerate(AGE_BANDS):
                    shares.append(origin_w[oi] * s_share * ages[ai])
                    keys.append((w["wijk_code"], sex, band, origin))
        exact = np.array(shares) * w["residents"]
        counts = np.floor(exact).astype(np.int64)
        # NOTE: largest remainder keeps the wijk total equal to the real CBS count.
        short = int(w["residents"] - counts.sum())
        if short > 0:
            counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
        rows.extend((*k, int(c)) for k, c in zip(keys, counts, strict=True))
    return pl.DataFrame(
        rows,
        schema={"wijk_code": pl.String, "sex": pl.String, "age_band": pl.String,
                "origin": pl.String, "population": pl.Int64},
        orient="row",
    )


def round_to_five(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CBS-style unbiased random rounding of counts to multiples of 5."""
    low = counts // 5 * 5
    return low + 5 * (rng.random(len(counts)) < (counts - low) / 5)


def make_pseudonyms(n: int, rng: np.random.Generator) -> pl.Series:
    """n distinct-with-overwhelming-probability 64-char lowercase hex strings, vectorised."""
    raw = rng.integers(0, 16, size=(n, 64), dtype=np.uint8)
    ascii_codes = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[raw]
    return pl.Series(ascii_codes.view("S64").ravel()).cast(pl.String)


def _month_keys(spec: SampleSpec) -> list[str]:
    return [f"{SAMPLE_YEAR + (m // 12)}-{m % 12 + 1:02d}" for m in range(spec.months)]


def _draw_people(spec: SampleSpec, cells: pl.DataFrame, team_of_wijk: dict[str, str],
                 rng: np.random.Generator) -> pl.DataFrame:
    """One row per synthetic person (residents and visitors) with their per-month query rates."""
    teams = sorted(TEAMS)
    residents = cells.select(
        pl.col("wijk_code").repeat_by(pl.col("population")).alias("residence_wijk"),
        pl.col("sex").repeat_by(pl.col("population")),
        pl.col("age_band").repeat_by(pl.col("population")),
        pl.col("origin").repeat_by(pl.col("population")),
    ).explode(["residence_wijk", "sex", "age_band", "origin"])
    n_res = residents.height
    # NOTE: visitors (commuters, tourists, nightlife) share the city's sex/age/origin mix and
    # live outside the covered area: residence_wijk is null.
    n_vis = int(n_res * spec.visitor_share / (1 - spec.visitor_share))
    visitors = residents[rng.choice(n_res, size=n_vis, replace=True)].with_columns(
        residence_wijk=pl.lit(None, pl.String))
    people = pl.concat([residents, visitors]).with_columns(
        residence_team=pl.col("residence_wijk").replace_strict(team_of_wijk, default=None))
    n = people.height
    codes = people.select(
        age=pl.col("age_band").replace_strict(AGE_BANDS, list(range(5)), return_dtype=pl.Int64),
        origin=pl.col("origin").replace_strict(ORIGIN_CODES, list(range(len(ORIGIN_CODES))),
                                               return_dtype=pl.Int64),
        team=pl.col("residence_team").replace_strict(teams, list(range(len(teams))),
                                                     default=-1, return_dtype=pl.Int64),
        male=pl.col("sex") == "M",
    )
    age, origin, team = (codes[c].to_numpy() for c in ("age", "origin", "team"))
    sexage = np.where(codes["male"].to_numpy(), np.array(SEX_AGE_RATE["M"])[age],
                      np.array(SEX_AGE_RATE["V"])[age])
    ratio = np.array([spec.true_ratios[o] for o in ORIGIN_CODES])[origin]
    for t, overrides in spec.team_overrides.items():
        for o, r in overrides.items():
            ratio[(team == teams.index(t)) & (origin == ORIGIN_CODES.index(o))] = r
    intensity = np.append([TEAM_INTENSITY.get(t, 1.0) for t in teams], 1.0)[team]
    person_w = sexage * ratio * intensity * rng.gamma(spec.frailty_shape, 1 / spec.frailty_shape, n)
    car = rng.random(n) < np.array(CAR_HOLDING)[age]
    plate_w = np.where(car, sexage * ratio * intensity * rng.gamma(
        spec.frailty_shape, 1 / spec.frailty_shape, size=n), 0.0)
    birth_low = SAMPLE_YEAR - np.array([14, 24, 44, 64, 90])[age]
    birth_high = SAMPLE_YEAR - np.array(AGE_BAND_LOWER)[age]
    is_nl = origin == ORIGIN_CODES.index("NL")
    return people.with_columns(
        origin_index=pl.Series(origin),
        team_index=pl.Series(team),
        birth_year=pl.Series(rng.integers(birth_low, birth_high + 1).astype(np.int64)),
        generation=pl.Series(np.where(rng.random(n) < 0.55, 1, 2)).set(pl.Series(is_nl), None),
        person_rate=pl.Series(person_w / person_w.sum() * spec.person_queries
                              * (1 - spec.unidentified_share) / spec.months),
        plate_rate=pl.Series(plate_w / plate_w.sum() * spec.plate_queries
                             * (1 - spec.company_plate_share) / spec.months),
    )


def _local_times(month: str, n: int, rng: np.random.Generator) -> pl.Series:
    """n UTC instants in the month, days uniform, local clock hour following HOUR_WEIGHTS."""
    year, mon = map(int, month.split("-"))
    days = calendar.monthrange(year, mon)[1]
    hour_p = np.array(HOUR_WEIGHTS, dtype=float) / sum(HOUR_WEIGHTS)
    day = rng.integers(1, days + 1, size=n)
    second = rng.choice(24, size=n, p=hour_p) * 3600 + rng.integers(0, 3600, size=n)
    local = (
        pl.DataFrame({"day": day, "second": second})
        .select(
            (pl.datetime(year, mon, pl.col("day")) + pl.duration(seconds=pl.col("second")))
            .alias("local")
        )
        .to_series()
    )
    # NOTE: a clock time inside the spring DST gap does not exist; move it one hour on.
    tz = local.dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
    fixed = (local + pl.duration(hours=1)).dt.replace_time_zone(
        TIMEZONE, ambiguous="earliest", non_existent="null")
    return tz.fill_null(fixed).dt.convert_time_zone("UTC").dt.cast_time_unit("us")


OFFICERS_PER_TEAM = 60


@dataclass
class _World:
    """Everything fixed across months; draws one month of queries of one type at a time."""

    spec: SampleSpec
    people: pl.DataFrame
    pseudonyms: pl.Series
    officers: pl.Series
    company_plates: pl.Series
    buurten: pl.DataFrame

    def month_queries(self, query_type: str, month: str, rng: np.random.Generator) -> pl.DataFrame:
        """One row per synthetic query of one month (contract columns plus person_index)."""
        spec, teams = self.spec, sorted(TEAMS)
        per_person = rng.poisson(self.people[f"{query_type}_rate"].to_numpy())
        known_idx = np.repeat(np.arange(self.people.height), per_person)
        extra = spec.unidentified_share if query_type == "person" else spec.company_plate_share
        n_extra = rng.poisson(len(known_idx) * extra / (1 - extra))
        person_idx = rng.permutation(np.concatenate([known_idx, np.full(n_extra, -1)]))
        n = len(person_idx)
        known = person_idx >= 0
        safe = np.maximum(person_idx, 0)
        home = np.where(known, self.people["team_index"].to_numpy()[safe], -1)
        attraction = np.array([TEAM_ATTRACTION.get(t, 1.0) for t in teams])
        elsewhere = rng.choice(len(teams), size=n, p=attraction / attraction.sum())
        at_home = (home >= 0) & (rng.random(n) < spec.resident_share_home)
        team = np.where(at_home, home, elsewhere)
        # NOTE: unidentified subjects and company vehicles get the reference hit rate.
        origin = np.where(known, self.people["origin_index"].to_numpy()[safe],
                          ORIGIN_CODES.index("NL"))
        hit_p = np.array([spec.hit_rates.get(o, spec.hit_rates["default"]) for o in ORIGIN_CODES])
        first = np.searchsorted(self.buurten["team_code"].to_numpy(), teams)
        count = np.diff(np.append(first, self.buurten.height))
        buurt = first[team] + (rng.random(n) * count[team]).astype(np.int64)
        reason_p = ([0.35, 0.2, 0.15, 0.1, 0.1, 0.1] if query_type == "person"
                    else [0.7, 0.05, 0.1, 0.08, 0.04, 0.03])
        frame = pl.DataFrame({
            "queried_at": _local_times(month, n, rng),
            "team_code": np.array(teams)[team],
            "officer_pseudonym": self.officers.gather(
                team * OFFICERS_PER_TEAM + rng.integers(0, OFFICERS_PER_TEAM, size=n)),
            "person_index": person_idx,
            "query_reason": np.array(QUERY_REASONS)[rng.choice(6, size=n, p=reason_p)],
            "buurt_code": self.buurten["buurt_code"].to_numpy()[buurt],
            "hit": rng.random(n) < hit_p[origin],
            "reason_missing": rng.random(n) < 0.12,
            "buurt_missing": rng.random(n) < 0.05,
            "hit_missing": rng.random(n) < spec.hit_missing_share,
            "company_index": rng.integers(0, self.company_plates.len(), size=n),
        })
        if query_type == "plate" and spec.dark_keep:
            # NOTE: the veil-of-darkness effect: in darkness, plate queries of holders of these
            # origins are thinned, so the odds of such a holder among dark queries are exactly
            # dark_keep times the odds in daylight at the same clock time.
            keep = np.array([spec.dark_keep.get(o, 1.0) for o in ORIGIN_CODES])[origin]
            keep = np.where(known, keep, 1.0)
            dark = tag_darkness(frame.select("queried_at"))["is_dark"].fill_null(False).to_numpy()
            frame = frame.filter(pl.Series(~dark | (rng.random(n) < keep)))
        frame = frame.sort("queried_at", "person_index", maintain_order=True)
        linked = pl.col("person_index") >= 0
        pseudonym = self.pseudonyms.gather(frame["person_index"].clip(0, None))
        prefix = "P" if query_type == "person" else "K"
        frame = frame.with_columns(
            query_id=pl.format(f"{prefix}{month.replace('-', '')}-{{}}",
                               pl.int_range(1, frame.height + 1).cast(pl.String).str.zfill(8)),
            query_reason=pl.when(~pl.col("reason_missing")).then("query_reason"),
            buurt_code=pl.when(~pl.col("buurt_missing")).then("buurt_code"),
            hit=pl.when(~pl.col("hit_missing")).then("hit"),
        )
        if query_type == "person":
            return frame.with_columns(subject_pseudonym=pl.when(linked).then(pseudonym))
        # NOTE: a holder's plate pseudonym is derived from theirs (reversed), so one person's
        # car keeps one plate; company and lease cars have no natural-person holder.
        return frame.with_columns(
            holder_pseudonym=pl.when(linked).then(pseudonym),
            plate_pseudonym=pl.when(linked).then(pseudonym.str.reverse()).otherwise(
                self.company_plates.gather(frame["company_index"])),
        )


def generate_sample(out: Path, spec: SampleSpec = SampleSpec()) -> dict:
    """Write a complete landing zone (DESIGN.md §4) and `truth.json` under `out`; return the truth.

    Deterministic: the same spec gives byte-identical files.
    """
    rng = np.random.default_rng(spec.seed)
    out = Path(out)
    wijken = read_wijken()
    team_areas = build_team_areas(wijken)
    team_of_wijk = dict(zip(team_areas["wijk_code"], team_areas["team_code"], strict=True))
    cells = build_population_cells(wijken)
    people = _draw_people(spec, cells, team_of_wijk, rng)
    pseudonyms = make_pseudonyms(people.height, rng)
    world = _World(
        spec=spec,
        people=people,
        pseudonyms=pseudonyms,
        officers=make_pseudonyms(len(TEAMS) * OFFICERS_PER_TEAM, rng),
        company_plates=make_pseudonyms(max(spec.plate_queries // 20, 10), rng),
        buurten=read_buurten().join(team_areas, on="wijk_code").sort("team_code", "buurt_code"),
    )
    unlinkable = rng.random(people.height) < spec.unlinked_share
    used = np.zeros(people.height, dtype=bool)
    for mi, month in enumerate(_month_keys(spec)):
        mrng = np.random.default_rng([spec.seed, mi])
        for query_type, schema in (("person", PERSON_QUERIES), ("plate", PLATE_QUERIES)):
            frame = world.month_queries(query_type, month, mrng)
            used[frame["person_index"].filter(frame["person_index"] >= 0).to_numpy()] = True
            folder = out / "meos" / f"{query_type}_queries"
            folder.mkdir(parents=True, exist_ok=True)
            frame.select(list(schema)).cast(dict(schema)).write_parquet(
                folder / f"{month}.parquet", compression="zstd", statistics=False)

    keep = used & ~unlinkable
    persons = people.with_columns(pseudonym=pseudonyms).filter(pl.Series(keep)).select(
        "pseudonym", "sex", "birth_year", "origin", "generation", "residence_wijk"
    ).sort("pseudonym")
    (out / "cbs").mkdir(parents=True, exist_ok=True)
    persons.write_parquet(out / "cbs" / "persons.parquet", compression="zstd", statistics=False)
    population = cells.with_columns(
        year=pl.lit(POPULATION_YEAR, pl.Int64),
        population=pl.Series(round_to_five(cells["population"].to_numpy(), rng)),
    ).select("year", "wijk_code", "sex", "age_band", "origin", "population")
    population.write_parquet(out / "cbs" / "population.parquet", compression="zstd", statistics=False)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    team_areas.write_csv(out / "reference" / "team_areas.csv")
    truth = {
        "synthetic": True,
        "note": "Built-in synthetic Amsterdam sample: real CBS 2024 wijk totals and sex split; "
                "origin/age structure, team mapping, persons and queries are synthetic.",
        "spec": asdict(spec),
        "months": _month_keys(spec),
        "true_veil_of_darkness_log_odds": {o: float(np.log(k)) for o, k in spec.dark_keep.items()},
        "persons_count": persons.height,
    }
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return truth
