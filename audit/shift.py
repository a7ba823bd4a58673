"""Does the scan look like the calibration? A goodness-of-fit test of pure prior shift on probe scores.

The corrected estimate assumes prior shift: each class looks in the scan as it did in calibration, only
the classes' shares differ. Then the scan's probe scores on images without hard evidence are drawn from
the mixture rho * S + (1 - rho) * R of calibration's held-out score distributions on such images (S
synthetic, R real), and the scores of images with hard evidence from the same kind of mixture of
calibration's hard-evidence images' scores. Each stratum (without / with hard evidence) is tested:

- `audit calibrate` stores each class's held-out scores per stratum (`score_distribution`: sorted, or
  MAX_STORED evenly spaced quantiles of larger sets, with their count).
- Each class needs MIN_CLASS calibration images in the stratum (fewer: the stratum is not tested and
  says so), except that the hard stratum's real class, rare by design, is modelled by the real images
  without hard evidence when calibration has too few with it (`real_from` says so).
- Scan and calibration scores are binned alike: the scan's SCORE_BINS fine bins grouped into at most
  TEST_BINS bins of about equal calibration count. rho is fitted by least squares on the cumulative
  shares, and the statistic is the Cramer-von Mises-type sum of squared differences between the scan's
  cumulative shares and the fitted mixture's.
- The p-value is a parametric bootstrap that redraws both calibration classes at their own sizes and a
  scan from the fitted mixture (RESAMPLES multinomial draws over the bins, fixed seed), so the
  calibration's finite size is carried. Strata are combined by Bonferroni (the smallest p-value times
  the number of strata tested).

The hard-evidence stratum only sees generators that leave hard evidence; the other stratum holds the
generators that matter most, but its synthetic images are often a small share of the scan, so a shift
there is found only when it is large or the share is. Not rejecting is no proof of no shift, so the
test also measures its own power: against each class's scores moved (in logit space) as far as
calibration saw the class's mean score move between its generators and sources (`moves`, the
sensitivity band's spread), it simulates POWER_SCANS scans of the same size and fitted share and counts
how often it would reject. Below POWER against any such move, a shift of the size calibration measured
could go unseen (`powered` is false, `unpowered` names the moves): the estimate then reports the band,
as it does when the test rejects. Small scans and small calibrations are always in that case.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.01  # the test's level: the scan warns (and widens its interval) when the p-value is below it
TEST_BINS = 20
MIN_TESTED = 20  # scan images a stratum needs to be tested
MIN_CLASS = 20  # calibration images a class needs in a stratum: the bootstrap treats their spread as the truth
MAX_STORED = 2000  # score values kept per class and stratum in calibration.json
POWER = 0.8  # the test's power against calibration's measured moves below which a shift could go unseen
POWER_SCANS = 200  # simulated scans per move for the power
MIN_MOVE = 0.005  # mean-score moves smaller than this need no power
RESAMPLES = 1000
SEED = 0
STRATA = {"rest": "images without hard evidence", "hard": "images with hard evidence"}


def score_distribution(scores: np.ndarray) -> dict:
    """What calibration.json keeps of one class's scores: n and the sorted values (evenly spaced quantiles
    when there are more than MAX_STORED), rounded to 6 decimals."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    kept = scores if scores.size <= MAX_STORED else np.quantile(scores, (np.arange(MAX_STORED) + 0.5) / MAX_STORED)
    return {"n": int(scores.size), "values": [round(float(v), 6) for v in kept]}


def fine_bins(values, fine: int) -> np.ndarray:
    """The scan's fine-bin index of each score."""
    return np.clip((np.asarray(values, dtype=np.float64) * fine).astype(np.int64), 0, fine - 1)


def shift_test(
    strata: dict[str, np.ndarray],
    distributions: dict | None,
    moves: dict | None = None,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict:
    """`strata`: per stratum ("rest", "hard") the scan's counts over the fine score bins. `distributions`:
    calibration.json's `score_distributions`. `moves`: per class ("synthetic", "real") the (low, high) moves
    of its mean score that the power is measured against, in the stratum without hard evidence (where the
    corrected estimate is made). Returns {tested, p_value, level, warned, powered, power, reason, strata}."""
    if distributions is None:
        return _untested(
            "the calibration holds no probe-score distributions (the probe did not run in "
            "calibration, or `audit calibrate` predates them: re-run it)",
            level,
        )
    rng = np.random.default_rng(seed)
    stratum_level = level / max(1, sum(int(np.sum(c)) >= MIN_TESTED for c in strata.values()))
    results = {
        name: _stratum(
            counts, _classes(distributions, name), rng, resamples, moves if name == "rest" else None, stratum_level
        )
        for name, counts in strata.items()
    }
    tested = {name: r for name, r in results.items() if "p_value" in r}
    if not tested:
        why = "; ".join(f"{STRATA[name]}: {r['skipped']}" for name, r in results.items())
        return {**_untested(f"no stratum could be tested ({why})", level), "strata": results}
    p = min(1.0, len(tested) * min(r["p_value"] for r in tested.values()))
    warned = p < level
    power = (results.get("rest") or {}).get("power", {})
    unpowered = [name for name, value in power.items() if value < POWER]
    powered = "p_value" in (results.get("rest") or {}) and not unpowered
    described = ", ".join(f"{STRATA[name]} p = {r['p_value']:.3g}" for name, r in tested.items())
    reason = (
        f"the scan's probe scores {'do not fit' if warned else 'fit'} a mixture of the calibration's "
        f"synthetic and real scores (p = {p:.3g}{' <' if warned else ' >='} {level}; {described})"
    )
    if not warned and not powered:
        reason += "; " + _unpowered_reason(results.get("rest") or {}, unpowered)
    return {
        "tested": True,
        "p_value": p,
        "level": level,
        "warned": warned,
        "powered": powered,
        "power": power,
        "strata": results,
        "reason": reason,
    }


def _unpowered_reason(rest: dict, unpowered: list[str]) -> str:
    if "p_value" not in rest:
        return f"{STRATA['rest']} could not be tested ({rest.get('skipped', 'no scores')})"
    shown = ", ".join(f"{name} {rest['power'][name]:.2f}" for name in unpowered)
    return (
        f"but at this scan's size the test would miss a shift as large as calibration measured between its "
        f"generators and sources (power {shown}, below {POWER})"
    )


def _classes(distributions: dict, stratum: str) -> dict:
    """Calibration's score distributions of both classes in `stratum`. Real images rarely carry hard evidence,
    so when calibration has fewer than MIN_CLASS of them, the hard stratum's real component is modelled by
    the real images without hard evidence (`real_from` says so)."""
    classes = dict(distributions.get(stratum) or {})
    real = classes.get("real") or {"n": 0, "values": []}
    if stratum == "hard" and real["n"] < MIN_CLASS:
        classes["real"] = (distributions.get("rest") or {}).get("real") or real
        classes["real_from"] = (
            f"real images without hard evidence (calibration has {real['n']} real images with "
            f"hard evidence; {MIN_CLASS} are needed to model them)"
        )
    return classes


def _untested(reason: str, level: float) -> dict:
    return {
        "tested": False,
        "p_value": None,
        "level": level,
        "warned": False,
        "powered": False,
        "power": {},
        "reason": reason,
    }


def _stratum(
    counts: np.ndarray,
    classes: dict,
    rng: np.random.Generator,
    resamples: int,
    moves: dict | None = None,
    level: float = LEVEL,
) -> dict:
    """One stratum's test: {n, p_value, statistic, fitted_share, power} or {n, skipped}."""
    fine = counts.size
    values = {label: fine_bins((classes.get(label) or {}).get("values", []), fine) for label in ("synthetic", "real")}
    sizes = {label: int((classes.get(label) or {}).get("n", 0)) for label in values}
    n = int(counts.sum())
    if n < MIN_TESTED:
        return {"n": n, "skipped": f"{n} scanned images with a probe score; at least {MIN_TESTED} are needed"}
    few = [f"{sizes[label]} {label}" for label in sizes if sizes[label] < MIN_CLASS]
    if few:
        return {
            "n": n,
            "skipped": f"calibration has {' and '.join(few)} images here; at least {MIN_CLASS} of each "
            "class are needed",
        }
    pooled = np.concatenate([v for v in values.values()])
    edges = np.unique(np.quantile(pooled, np.arange(1, TEST_BINS) / TEST_BINS, method="lower"))
    coarse = np.searchsorted(edges, np.arange(fine), side="right")
    bins = edges.size + 1
    scan = np.bincount(coarse, weights=counts, minlength=bins) / n
    shares = {
        label: np.bincount(np.searchsorted(edges, v, side="right"), minlength=bins) / max(v.size, 1)
        for label, v in values.items()
    }
    s, r = shares["synthetic"], shares["real"]
    statistic, rho = _fit(scan[None], s[None], r[None])
    draws = {label: rng.multinomial(sizes[label], shares[label], size=resamples) / sizes[label] for label in shares}
    mixture = rho[0] * s + (1 - rho[0]) * r
    replicated, _ = _fit(
        rng.multinomial(n, mixture / mixture.sum(), size=resamples) / n, draws["synthetic"], draws["real"]
    )
    p = float((1 + (replicated >= statistic[0] - 1e-12).sum()) / (resamples + 1))
    critical = float(np.quantile(replicated, 1 - level))
    power = (
        {} if moves is None else _power(moves, classes, (fine, edges), shares, draws, n, float(rho[0]), critical, rng)
    )
    return {
        "n": n,
        "p_value": p,
        "statistic": float(statistic[0]),
        "fitted_share": float(rho[0]),
        "calibration": sizes,
        "power": power,
        **({"real_from": classes["real_from"]} if "real_from" in classes else {}),
    }


def _power(
    moves: dict,
    classes: dict,
    binning: tuple[int, np.ndarray],
    shares: dict,
    draws: dict,
    n: int,
    rho: float,
    critical: float,
    rng: np.random.Generator,
) -> dict:
    """Per move ("synthetic lower", "real higher", ...) the share of simulated scans of size n at share rho,
    with that class's scores moved, whose statistic against the unmoved calibration exceeds `critical`.
    `binning`: the scan's fine bin count and the test's bin edges over them."""
    fine, edges = binning
    power = {}
    for label, (low, high) in moves.items():
        values = np.asarray((classes.get(label) or {}).get("values", []), dtype=np.float64)
        for move, word in ((low, "lower"), (high, "higher")):
            if abs(move) < MIN_MOVE or not values.size:
                continue
            moved = (
                np.bincount(
                    np.searchsorted(edges, fine_bins(moved_scores(values, move), fine), side="right"),
                    minlength=edges.size + 1,
                )
                / values.size
            )
            s, r = (moved, shares["real"]) if label == "synthetic" else (shares["synthetic"], moved)
            mixture = rho * s + (1 - rho) * r
            scans = rng.multinomial(n, mixture / mixture.sum(), size=POWER_SCANS) / n
            statistic, _ = _fit(scans, draws["synthetic"][:POWER_SCANS], draws["real"][:POWER_SCANS])
            power[f"{label} {word}"] = float((statistic > critical).mean())
    return power


def moved_scores(values: np.ndarray, move: float) -> np.ndarray:
    """Scores shifted by one constant in logit space so that their mean moves by `move` (as far as it can)."""
    logits = np.log(np.clip(values, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(values, 1e-6, 1 - 1e-6))
    target = float(np.clip(values.mean() + move, 1e-6, 1 - 1e-6))
    low, high = -30.0, 30.0
    for _ in range(60):
        delta = (low + high) / 2
        if (1 / (1 + np.exp(-(logits + delta)))).mean() < target:
            low = delta
        else:
            high = delta
    return 1 / (1 + np.exp(-(logits + (low + high) / 2)))


def _fit(scan: np.ndarray, s: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of bin shares: the fitted synthetic share rho (least squares on cumulative shares, in [0, 1]) and
    the sum of squared differences between the scan's cumulative shares and the fitted mixture's."""
    scan_c, s_c, r_c = np.cumsum(scan, -1), np.cumsum(s, -1), np.cumsum(r, -1)
    d = s_c - r_c
    rho = np.clip(((scan_c - r_c) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0.0, 1.0)
    fitted = r_c + rho[:, None] * d
    return ((scan_c - fitted) ** 2)[:, :-1].sum(-1), rho
