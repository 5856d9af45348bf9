import copy, sys
from datetime import date
import numpy as np
import migsim
from migsim.evidence.actuals import read_actuals
from migsim.evidence.state import state_from_actuals
sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
results.daily.to_parquet(".scratch/daily.parquet", index=False)
actuals = read_actuals(".scratch/daily.parquet", sc)
n = int(sys.argv[1])
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    read, _ = state_from_actuals(sc, actuals, when)
    read["inputs_from"] = copy.deepcopy(ex["inputs_from"])
    print(when, "exact defects", ex["operations_state"].get("defects"))
    print(when, "read defects", read["operations_state"].get("defects"))
    eo, ro = ex["operations_state"], read["operations_state"]
    for k in sorted(set(eo) | set(ro)):
        if k not in ("els_queue", "defects") and eo.get(k) != ro.get(k):
            print("   differs", k, "exact", str(eo.get(k))[:150], "read", str(ro.get(k))[:150])
    rd = copy.deepcopy(read); rd["operations_state"]["defects"] = copy.deepcopy(eo.get("defects", []))
    rp = copy.deepcopy(read); rp["operations_state"] = {**copy.deepcopy(eo), "els_queue": copy.deepcopy(ro["els_queue"])}
    out = {}
    for label, start in (("exact", ex), ("read", read), ("read+exact_defects", rd), ("read+exact_ops", rp)):
        run = migsim.run(sc.starting_from(start), replications=n, seed=11, batch_size=n)
        out[label] = run.replications["migrated"].to_numpy(float)
    base = out["exact"]
    for label, m in out.items():
        d = m - base
        print(f"{when} {label:20s} migrated {m.mean():10.1f} diff {d.mean():+7.1f} paired SE {d.std(ddof=1)/np.sqrt(n):5.1f}", flush=True)
