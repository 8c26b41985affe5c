"""Write the tiny real-format trace fixtures used by tests/test_trace*.py (run once; committed).

MAF1 (two days, five functions; function order fA fB fC fD fE):
  d01: fA: min0=3 min1=2 min59=1 min60=5 | fB: min100=4 | fC: min5=1 min30=10 | fD: all zero
  d02: fE: min0=7 | fA: min10=1 | fD: min0=2          (fE is listed first but is new on day 2)
MAF2 (two days, four functions, apps a1 a2; rows sorted by end_timestamp, so the order of first
appearance is g4 g1 g2 g3):
  g1: 20 invocations spread over [0, 5400), 6 within 10 s around 6000, 3 on day 2
  g2: 2 invocations in [0, 5400)
  g3: day 2 only
  g4: 5 invocations in [0, 5400), two of them at the same time
"""

from pathlib import Path

HERE = Path(__file__).parent
H = [str(i) for i in range(1, 1441)]


def maf1_row(owner, app, func, trig, cells):
    counts = ["0"] * 1440
    for minute, c in cells.items():
        counts[minute] = str(c)
    return ",".join([owner, app, func, trig] + counts)


def write_maf1():
    header = ",".join(["HashOwner", "HashApp", "HashFunction", "Trigger"] + H)
    d1 = [maf1_row("o1", "a1", "fA", "http", {0: 3, 1: 2, 59: 1, 60: 5}),
          maf1_row("o1", "a1", "fB", "timer", {100: 4}),
          maf1_row("o2", "a2", "fC", "queue", {5: 1, 30: 10}),
          maf1_row("o2", "a3", "fD", "http", {})]
    d2 = [maf1_row("o3", "a4", "fE", "event", {0: 7}),
          maf1_row("o1", "a1", "fA", "http", {10: 1}),
          maf1_row("o2", "a3", "fD", "http", {0: 2})]
    for day, rows in ((1, d1), (2, d2)):
        p = HERE / "maf1" / f"invocations_per_function_md.anon.d{day:02d}.csv"
        p.write_text("\n".join([header] + rows) + "\n")


def write_maf2():
    rows = []
    for k in range(20):
        t = 100.0 + 260.0 * k + (k % 3) * 7.25
        rows.append(("a1", "g1", t, 0.5))
    for off in (0.0, 1.5, 2.5, 4.5, 5.0, 7.5):
        rows.append(("a1", "g1", 6000.0 + off, 0.25))
    for t in (86400.0 + 50, 86400.0 + 900, 86400.0 + 4000):
        rows.append(("a1", "g1", t, 1.0))
    rows += [("a1", "g2", 300.0, 0.125), ("a1", "g2", 2000.0, 0.125)]
    rows += [("a2", "g3", 86400.0 + 10 * k, 0.5) for k in range(1, 6)]
    for t in (10.0, 400.0, 400.0, 1234.5, 5000.0):
        rows.append(("a2", "g4", t, 2.0))
    # The real file is ordered by end_timestamp; first appearance of func follows from that.
    rows.sort(key=lambda r: r[2] + r[3])
    lines = ["app,func,end_timestamp,duration"]
    lines += [f"{a},{f},{t + d!r},{d!r}" for a, f, t, d in rows]
    (HERE / "maf2" / "AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt").write_text(
        "\n".join(lines) + "\n")


if __name__ == "__main__":
    write_maf1()
    write_maf2()
