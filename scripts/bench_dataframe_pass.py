"""Why the product has no polars: the hot dataframe pass (device windows -> region-day cells) timed in
DuckDB, polars and pandas on 900,000 synthetic windows. Prints the figures, the last line one JSON object.
Run with polars installed (`pip install polars`); it is not a dependency of the product.
"""
import json
import time, numpy as np, pandas as pd, polars as pl, duckdb, pyarrow as pa
rng=np.random.default_rng(0); n=900_000
df=pd.DataFrame({"region_id":rng.integers(1,57,n).astype(str),"device_id":rng.integers(0,400,n).astype(str),
  "day":pd.to_datetime("2022-01-01")+pd.to_timedelta(rng.integers(0,600,n),unit="D"),
  "n_observations":rng.integers(11,200,n),"distress_share":rng.random(n)})
t=pa.Table.from_pandas(df)
def best(f,k=3):
    b=1e9
    for _ in range(k):
        t0=time.perf_counter(); f(); b=min(b,time.perf_counter()-t0)
    return b
con=duckdb.connect()
def d(): con.execute("select region_id, day, count(distinct device_id) dev, sum(n_observations) obs, sum(distress_share*n_observations)/sum(n_observations) m from t group by all").arrow()
pdf=pl.from_arrow(t)
def p(): pdf.group_by(["region_id","day"]).agg(pl.col("device_id").n_unique().alias("dev"),pl.col("n_observations").sum().alias("obs"),((pl.col("distress_share")*pl.col("n_observations")).sum()/pl.col("n_observations").sum()).alias("m"))
def pd_(): df.assign(w=df.distress_share*df.n_observations).groupby(["region_id","day"]).agg(dev=("device_id","nunique"),obs=("n_observations","sum"),w=("w","sum"))
def p_conv(): pl.from_arrow(t)
r={"duckdb_s":best(d),"polars_s":best(p),"polars_from_arrow_s":best(p_conv),"pandas_s":best(pd_)}
print(json.dumps({k: round(v, 3) for k, v in r.items()}))
