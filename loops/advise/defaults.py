"""The defaults of `audit advise` and `loops.advise`, in one place (the command line reads them from
here, the Python API's keyword defaults too; the prices are `Costs()`'s fields)."""

from __future__ import annotations

DEFAULTS = {
    "metric": "fid",  # the quality metric the tolerance is on
    "max_quality_loss": 0.1,  # at most 10 % worse than the all-real control
    "fresh_grid": (0.25, 0.5, 0.75, 1.0),  # the coarse fresh shares, tried in order
    "fresh_step": 0.05,  # the resolution of the fine search
}
# The Gaussian backend runs its seeds as one vectorised batch, so many seeds are cheap: the search
# picks on 200 seeds and the candidates are verified on 200 others (about 0.25 s per simulation).
GAUSSIAN_REPEATS = 200
GAUSSIAN_HELDOUT = 200
VERIFIED = 3  # candidates verified on the held-out seeds: the leader and two runners-up
MAX_RAISES = 4  # when none holds, the leader's fresh share is raised a step at most this often
SAFE_STEP = 0.05  # the contamination grid on which "stays safe up to" is found
