-- Question: Which records were rejected in the last 7 days of data, and why?
-- How to read: one row per reason, most frequent first. "This week" is the 7 days up to the
--   latest rejection in the warehouse (so the example also works on old fixture data); replace
--   the cutoff with current_date - 7 in production. below_k_anonymity means a device sent a
--   window with fewer than k_min observations: privacy working, not a bug.
with

cutoff as (
    select max(day) - 6 as since from dead_letters_summary
),

final as (
    select reason, sum(n_dead_letters) as n_dead_letters, count(distinct topic) as n_topics, min(example_detail) as example
    from dead_letters_summary, cutoff
    where day >= cutoff.since
    group by reason
)

select * from final order by n_dead_letters desc, reason;
