import copy
from datetime import date
import migsim
from migsim.evidence.actuals import read_actuals
from migsim.evidence.state import state_from_actuals
sc = migsim.load_scenario("scenarios/nov2019_operations.yaml", {"els.daily_capacity": 40})
results = migsim.run(sc, replications=1, seed=7)
results.daily.to_parquet(".scratch/daily.parquet", index=False)
actuals = read_actuals(".scratch/daily.parquet", sc)
def summ(v, held=None):
    if isinstance(v, int): return (v, 0.0)
    gs = [g for g in v if held is None or bool(g.get("held")) == held]
    n = sum(g["count"] for g in gs); m = sum(g["count"]*g.get("attempts_made",0) for g in gs)
    d = sum(g["count"]*g.get("days_until_due",0) for g in gs)
    return (n, round(m/n,3) if n else 0, round(d/n,2) if n else 0)
for when in (date(2020, 2, 21), date(2020, 4, 3)):
    ex = results.state_on(when, 0); rd, _ = state_from_actuals(sc, actuals, when)
    print(when)
    for name in ex["cohorts"]:
        for k in ("pending","queued","stalled","rolled_back","impaired","migrated","dumb","abandoned","recovering"):
            for held in ((None,) if k not in ("stalled","impaired") else (False, True)):
                e = summ(ex["cohorts"][name].get(k, []), held); r = summ(rd["cohorts"][name].get(k, []), held)
                print(f"  {name:15s} {k:12s} {str(held):5s} exact {e}  read {r}")
