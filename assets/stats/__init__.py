"""The public statistics API of stopcheck: Dagster-free, polars in, typed results out.

Notebooks and other programs import these names; docs/methodology.md and
docs/methodology-benchmark-free.md explain each estimator.
"""

from assets.stats.clusters import count_cross_products, design_effect
from assets.stats.darkness import VeilOfDarknessResult, compute_veil_of_darkness, fit_veil_of_darkness
from assets.stats.models import (
    CountModelResult,
    exponentiate_coefficients,
    fit_count_model,
    fit_count_models,
)
from assets.stats.outcome import compute_outcome_test, newcombe_difference, wilson_interval
from assets.stats.rates import RateRatioResult, compute_rate_ratios, rate_ratio, rate_ratio_table
from assets.stats.repeat import (
    add_proco_count,
    compute_repeat_checks,
    compute_repeat_tables,
    count_persons_by_query_count,
    count_proco_histogram,
    count_repeat_histograms,
    gini,
    summarise_proco_counts,
)
from assets.stats.shrinkage import (
    bh_q_values,
    funnel_limits,
    missing_origin_bounds,
    shrink_ratios_within,
)
from assets.stats.splines import natural_spline_basis
from assets.stats.standardise import standardised_incidence_ratio

__all__ = [
    "CountModelResult",
    "RateRatioResult",
    "VeilOfDarknessResult",
    "add_proco_count",
    "bh_q_values",
    "compute_outcome_test",
    "compute_rate_ratios",
    "compute_repeat_checks",
    "compute_repeat_tables",
    "compute_veil_of_darkness",
    "count_cross_products",
    "count_persons_by_query_count",
    "count_proco_histogram",
    "count_repeat_histograms",
    "design_effect",
    "exponentiate_coefficients",
    "fit_count_model",
    "fit_count_models",
    "fit_veil_of_darkness",
    "funnel_limits",
    "gini",
    "missing_origin_bounds",
    "natural_spline_basis",
    "newcombe_difference",
    "rate_ratio",
    "rate_ratio_table",
    "shrink_ratios_within",
    "standardised_incidence_ratio",
    "summarise_proco_counts",
    "wilson_interval",
]
