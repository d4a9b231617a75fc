-- int_affect_device_day: one row per device, region and UTC day (internal: device-level rows).
-- Holds sums, not means, so that day and week marts can re-aggregate without losing weights.
with

windows as (
    select * from analyst.staging.stg_affect_windows
),

final as (
    select
        region_id,
        device_id,
        site_type,
        window_date as day,                                         -- UTC day
        cast(count(*) as bigint) as n_windows,                                    -- windows (count)
        cast(sum(n_observations) as bigint) as n_observations,                      -- observations (count)
        cast(sum(n_abstained) as bigint) as n_abstained,                            -- abstained observations (count)
        cast(sum(n_scored) as bigint) as n_scored,                                  -- scored observations (count)
        sum(valence_mean * n_scored) as valence_x_scored,           -- valence x scored observations
        sum(arousal_mean * n_scored) as arousal_x_scored,           -- arousal x scored observations
        sum(distress_share * n_scored) as distressed_scored,        -- scored observations in distress (count)
        sum(confidence_mean * n_scored) as confidence_x_scored,     -- confidence x scored observations
        sum(quality_pose_stability) as pose_stability_sum,          -- sum over windows reporting it, [0, 1] each
        count(quality_pose_stability) as pose_stability_n,          -- windows reporting it (count)
        sum(quality_lighting) as lighting_sum,                      -- sum over windows reporting it, [0, 1] each
        count(quality_lighting) as lighting_n,                      -- windows reporting it (count)
        sum(quality_snr_db) as snr_db_sum,                          -- sum over windows reporting it, dB each
        count(quality_snr_db) as snr_db_n,                          -- windows reporting it (count)
        list_sort(list_distinct(list(model_version))) as model_versions, -- distinct model ids
        bool_or(simulated) as simulated,                            -- any window simulated
        count(dp_epsilon) as n_windows_dp,                          -- windows with on-device noise (count)
        max(window_end) as last_window_end,                         -- timestamptz
        median(epoch(ingested_at - window_end)) / 60.0 as ingest_delay_minutes -- median delay, minutes
    from windows
    group by region_id, device_id, site_type, window_date
)

select * from final
