"""Partitions of the asset graph: one per export month present in the landing zone.

On the assets side because the monthly asset modules declare them; the wiring (jobs, sensors,
`stopcheck run`) imports them from here (STYLE.md rule 13).
"""

import dagster as dg

# NOTE: dynamic rather than calendar partitions: the months are whatever the police exported
# (the sensor and `stopcheck run` register them), so a gap is visible as a missing export
# instead of an empty calendar partition.
MONTHS = dg.DynamicPartitionsDefinition(name="month")
