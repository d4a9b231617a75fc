-- Question: Which region-weeks of affect are suppressed, and for which privacy reason?
-- How to read: one row per suppressed region-week (no-data weeks left out). Code 1: fewer than
--   k_min scored observations; code 2: fewer than min_devices devices; code 5: complementary
--   suppression (its suppressed days could otherwise be recovered by differencing). Affect
--   values of these cells are NULL in every view; n_devices and n_scored say how far from the
--   threshold they are.
select region_id, week_start, n_devices, n_scored, suppression, suppression_label
from affect_region_week
where suppression in (1, 2, 5)
order by week_start, region_id;
