from datetime import date
import migsim
from collections import defaultdict
sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
for when in (date(2020,1,10), date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0)
    by = defaultdict(int)
    for c in ex["operations_state"]["els_queue"]:
        by[(c["cohort"], c.get("supplier",""), c["kind"])] += c["count"]
    print(when)
    for k in sorted(by): print("  case", k, by[k])
    for name, st in ex["cohorts"].items():
        for p in st.get("parts", []):
            def cnt(v): return v if isinstance(v,int) else sum(g["count"] for g in v)
            def held(v): return 0 if isinstance(v,int) else sum(g["count"] for g in v if g.get("held"))
            total = sum(cnt(p[s]) for s in ("pending","queued","stalled","rolled_back","impaired","migrated","dumb","abandoned"))
            print("  part", name, p["supplier"], p["kind"], "total", total, "pending", p["pending"], "queued", cnt(p["queued"]), "stalled", cnt(p["stalled"]), "held", held(p["stalled"]), "rb", cnt(p["rolled_back"]), "imp held", held(p["impaired"]), "migr", p["migrated"])
