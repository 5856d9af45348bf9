"""exact_supplier: parts exact per supplier, classes within each supplier shared by
split_state (held per class exact). Compared with exact, exact_noparts."""
import copy, sys
from datetime import date
import numpy as np
import migsim
from migsim.model.state import InitialState
from migsim.model.scenario import probability_mean
from migsim.sim.initial_state import split_state, merge_states, PartOdds, groups_of, Group
from migsim.sim.segments import plan_segments
from migsim.sim.records import STATES

sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
segs = plan_segments(sc)

def supplier_exact(ex):
    s = copy.deepcopy(ex)
    for c, cohort in enumerate(sc.cohorts):
        st = s["cohorts"][cohort.name]
        then = probability_mean(cohort.stall.then_success) if cohort.stall else 1.0
        new = []
        for seg in (g for g in segs if g.cohort == c):
            mine = [p for p in st["parts"] if p["supplier"] == seg.label]
            merged = {}
            for p in mine:
                q = {k: copy.deepcopy(p.get(k, [] if k == "recovering" else 0)) for k in (*STATES, "recovering")}
                merged = q if not merged else merge_states(merged, q)
            init = InitialState.model_validate(merged)
            odds = [PartOdds(k.installations, tuple(float(r) for r in k.rates), then, cohort.max_attempts, k.excluded == "up_front") for k in seg.classes]
            held = []
            for k in seg.classes:
                p = next(p for p in mine if p["kind"] == k.kind)
                d = {}
                for name in ("stalled", "impaired"):
                    v = p[name]
                    if isinstance(v, list):
                        gs = [Group(g["count"], g.get("attempts_made", 1), 1, True) for g in v if g.get("held")]
                        if gs: d[name] = gs
                held.append(d)
            shared = split_state(init, odds, held)
            for k, part in zip(seg.classes, shared):
                new.append({"supplier": seg.label, "kind": k.kind, **clean(part)})
        st["parts"] = new
    return s

def clean(part):
    out = {}
    for k, v in part.items():
        if isinstance(v, list):
            v = [{kk: vv for kk, vv in g.items() if not (kk == "held" and not vv) and not (k in ("impaired",) and kk == "attempts_made")} for g in v]
        out[k] = v
    return out

def strip_parts(state):
    s = copy.deepcopy(state)
    for c in s["cohorts"].values():
        c.pop("parts", None)
    return s

n = int(sys.argv[1])
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    out = {}
    for label, start in (("exact", ex), ("exact_supplier", supplier_exact(ex)), ("exact_noparts", strip_parts(ex))):
        run = migsim.run(sc.starting_from(start), replications=n, seed=11, batch_size=n)
        out[label] = run.replications["migrated"].to_numpy(float)
    base = out["exact"]
    for label, m in out.items():
        d = m - base
        print(f"{when} {label:16s} migrated {m.mean():10.1f} diff {d.mean():+7.1f} paired SE {d.std(ddof=1)/np.sqrt(n):5.1f}", flush=True)
