"""Decompose read - exact_flat: the desk's part (queue + held groups) vs the rest."""
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

def flat(state):
    s = copy.deepcopy(state)
    for c in s["cohorts"].values():
        c.pop("parts", None)
    for c in s["operations_state"]["els_queue"]:
        c.pop("supplier", None)
    return s

def cnt(v):
    return v if isinstance(v, int) else sum(g["count"] for g in v)

def swap_desk(base, donor):
    """base's state with donor's queue and held groups (fresh queued absorbs)."""
    s = copy.deepcopy(base)
    s["operations_state"]["els_queue"] = copy.deepcopy(donor["operations_state"]["els_queue"])
    for name, st in s["cohorts"].items():
        before = sum(cnt(st[k]) for k in ("stalled", "impaired"))
        for k in ("stalled", "impaired"):
            mine = [g for g in st[k] if not g.get("held")] if isinstance(st[k], list) else st[k]
            theirs = [copy.deepcopy(g) for g in donor["cohorts"][name][k] if isinstance(donor["cohorts"][name][k], list) and g.get("held")]
            st[k] = (mine if isinstance(mine, list) else ([{"count": mine, "attempts_made": 1, "days_until_due": 1}] if mine else [])) + theirs
        after = sum(cnt(st[k]) for k in ("stalled", "impaired"))
        q = st["queued"]
        fresh = next(g for g in q if g.get("attempts_made", 0) == 0)
        fresh["count"] -= after - before
    return s

n = int(sys.argv[1])
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    read, _ = state_from_actuals(sc, actuals, when)
    read["inputs_from"] = copy.deepcopy(ex["inputs_from"])
    fx = flat(ex)
    variants = {"exact": ex, "read": read, "exact_flat": fx,
                "flat+read_desk": swap_desk(fx, read), "read+exact_desk": swap_desk(read, fx)}
    out = {}
    for label, start in variants.items():
        run = migsim.run(sc.starting_from(start), replications=n, seed=11, batch_size=n)
        out[label] = run.replications["migrated"].to_numpy(float)
    base = out["exact"]
    for label, m in out.items():
        d = m - base
        print(f"{when} {label:16s} migrated {m.mean():10.1f} diff {d.mean():+7.1f} paired SE {d.std(ddof=1)/np.sqrt(n):5.1f}", flush=True)
