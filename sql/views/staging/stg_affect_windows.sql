-- stg_affect_windows: accepted device windows, renamed and cast only (internal: device-level rows).
-- Never exposed to analysts; marts aggregate it to region cells with small-cell suppression.
select
    device_id,                                                  -- pseudonymous device id (rotating HMAC)
    region_id,                                                  -- state FIPS (2), county FIPS (5) or H3 cell
    site_type,                                                  -- ed | clinic | school | transit | other
    window_start,                                               -- timestamptz, UTC
    window_end,                                                 -- timestamptz, UTC
    cast(timezone('UTC', window_start) as date) as window_date, -- UTC calendar day of window_start
    date_trunc('hour', timezone('UTC', window_start)) as window_hour, -- UTC clock hour of window_start (timestamp)
    cast(cast(timezone('UTC', window_start) as date)
         - cast(dayofweek(timezone('UTC', window_start)) as integer) as date) as week_start, -- MMWR week start (Sunday)
    cast(n_observations as bigint) as n_scored,                 -- scored observations (n_observations, DESIGN.md), behind the means (count)
    cast(n_abstained as bigint) as n_abstained,                 -- further observations the device refused to score (count)
    valence_mean,                                               -- mean valence, [-1, 1]
    arousal_mean,                                               -- mean arousal, [-1, 1]
    valence_sd,                                                 -- sd of valence, >= 0, valence units
    arousal_sd,                                                 -- sd of arousal, >= 0, arousal units
    distress_share,                                             -- share of scored observations, [0, 1]
    confidence_mean,                                            -- mean model confidence, [0, 1]
    quality_pose_stability,                                     -- [0, 1], face only
    quality_lighting,                                           -- [0, 1], face only
    quality_snr_db,                                             -- signal-to-noise ratio, dB, voice only
    coalesce(                                                   -- capture quality, [0, 1]: mean of the reported
        (coalesce(least(greatest(quality_pose_stability, 0), 1), 0)  -- indicators (snr 0 dB -> 0, 20 dB -> 1),
         + coalesce(least(greatest(quality_lighting, 0), 1), 0)       -- 1 when none is reported
         + coalesce(least(greatest(quality_snr_db / 20.0, 0), 1), 0))
        / nullif((quality_pose_stability is not null)::int + (quality_lighting is not null)::int
                 + (quality_snr_db is not null)::int, 0),
        1.0) as quality,
    modality,                                                   -- face | voice | multimodal
    model_version,                                              -- on-device model id
    dp_epsilon,                                                 -- Laplace epsilon, NULL if no noise
    simulated,                                                  -- true when from the device simulator
    ingested_at                                                 -- timestamptz, when the warehouse got it
from wh.affect_windows
