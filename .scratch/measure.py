"""Continuations from variants of the state on a date (nov2019_operations, desk 40)."""
import copy, sys, time, pickle, os
from datetime import date
import numpy as np
import migsim
from migsim.evidence.actuals import read_actuals
from migsim.evidence.state import state_from_actuals

OPS = "scenarios/nov2019_operations.yaml"
sc = migsim.load_scenario(OPS, {"els.daily_capacity": 40})
cache = ".scratch/base.pkl"
results = migsim.run(sc, replications=1, seed=7)
results.daily.to_parquet(".scratch/daily.parquet", index=False)
actuals = read_actuals(".scratch/daily.parquet", sc)

def strip_supplier(state):
    s = copy.deepcopy(state)
    for c in s["operations_state"]["els_queue"]:
        c.pop("supplier", None)
    return s

def strip_parts(state):
    s = copy.deepcopy(state)
    for c in s["cohorts"].values():
        c.pop("parts", None)
    return s

def variants(when):
    exact = results.state_on(when, 0)
    read, _ = state_from_actuals(sc, actuals, when)
    read["inputs_from"] = copy.deepcopy(exact["inputs_from"])
    return {
        "exact": exact,
        "read": read,
        "exact_nosupplier": strip_supplier(exact),
        "exact_noparts": strip_parts(exact),
        "exact_flat": strip_supplier(strip_parts(exact)),
    }

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
which = sys.argv[2].split(",") if len(sys.argv) > 2 else None
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    out = {}
    for label, start in variants(when).items():
        if which and label not in which:
            continue
        t = time.time()
        run = migsim.run(sc.starting_from(start), replications=n, seed=11, batch_size=n)
        out[label] = run.replications["migrated"].to_numpy(float)
        print(when, label, round(time.time() - t), "s", flush=True)
    base = out["exact"]
    for label, m in out.items():
        d = m - base
        se = np.sqrt(base.var(ddof=1) / n + m.var(ddof=1) / n)
        pse = d.std(ddof=1) / np.sqrt(n) if label != "exact" else 0
        print(f"{when} {label:18s} migrated {m.mean():10.1f}  diff {d.mean():+7.1f}  unpaired SE {se:5.1f}  paired SE {pse:5.1f}", flush=True)
