import copy, sys
from datetime import date
import numpy as np
import migsim
sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
n = int(sys.argv[1])
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    nd = copy.deepcopy(ex); nd["operations_state"].pop("defects")
    out = {}
    for label, start in (("exact", ex), ("exact_nodefects", nd)):
        run = migsim.run(sc.starting_from(start), replications=n, seed=11, batch_size=n)
        out[label] = run.replications["migrated"].to_numpy(float)
        if label == "exact_nodefects":
            rec = run.defects if hasattr(run, "defects") else None
            print(type(rec), None if rec is None else rec.head(3))
    d = out["exact_nodefects"] - out["exact"]
    print(when, f"no defects state: {d.mean():+.1f} (paired SE {d.std(ddof=1)/np.sqrt(n):.1f}); reps differing {np.count_nonzero(d)} of {n}; mean where differing {d[d!=0].mean() if d.any() else 0:+.1f}")
