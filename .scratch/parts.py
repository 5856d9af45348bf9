import copy
from datetime import date
from collections import defaultdict
import migsim
from migsim.sim.initial_state import part_states, count_of
from migsim.sim.segments import plan_segments
from migsim.evidence.actuals import read_actuals
from migsim.evidence.state import state_from_actuals
sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
results.daily.to_parquet(".scratch/daily.parquet", index=False)
actuals = read_actuals(".scratch/daily.parquet", sc)
NAMES = ("queued", "stalled", "rolled_back", "impaired", "migrated", "dumb", "abandoned")
def table(parts_list, segs):
    out = defaultdict(int)
    for seg, parts in zip(segs, parts_list):
        for k, part in zip(seg.classes, parts):
            for nm in NAMES:
                out[(sc.cohorts[seg.cohort].name, seg.label, k.kind, nm)] += count_of(part[nm])
    return out
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    flat = copy.deepcopy(ex)
    for c in flat["cohorts"].values(): c.pop("parts")
    read, _ = state_from_actuals(sc, actuals, when)
    rows = {}
    for label, st in (("exact", ex), ("noparts", flat), ("read", read)):
        s2 = sc.starting_from(st)
        segs = plan_segments(s2)
        rows[label] = table(part_states(s2, segs), segs)
    print(when)
    # by class (summed over suppliers) and by supplier (summed over classes)
    for agg, keyf in (("class", lambda k: (k[0], k[2], k[3])), ("supplier", lambda k: (k[0], k[1], k[3]))):
        acc = {l: defaultdict(int) for l in rows}
        for l, t in rows.items():
            for k, v in t.items(): acc[l][keyf(k)] += v
        for k in sorted(acc["exact"]):
            if k[2] in ("queued", "migrated", "stalled", "rolled_back"):
                e = acc["exact"][k]
                print(f"  {agg:8s} {str(k):50s} exact {e:6d} noparts {acc['noparts'][k]-e:+6d} read {acc['read'][k]-e:+6d}")
