#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the console logs of scripts/bench's guests into a table and JSON.

    report.py LOGDIR

LOGDIR holds {base,series}-{4,5}level.log (guest consoles), hotpaths.json
and meta.json (written by scripts/bench).  Writes LOGDIR/bench.json and
LOGDIR/bench.txt and prints the table.  Every number comes from the logs.
"""
import json
import os
import re
import statistics
import sys

KV = re.compile(r"(\w+)=(\S*)")


def parse(path):
    """All '@@BENCH' lines of a console log: list of (kind, dict, raw)."""
    recs = []
    if not os.path.exists(path):
        return recs
    with open(path, errors="replace") as f:
        for line in f:
            i = line.find("@@BENCH ")
            if i < 0:
                continue
            body = line[i + 8:].strip()
            body = re.sub(r"^(devmem_bench|hmm_bench): ", "", body)
            words = body.split()
            if not words:
                continue
            kind = words[0]
            if kind in ("tput", "meminfo", "dmesg"):
                pass
            recs.append((kind, dict(KV.findall(body)), body))
    return recs


def first(recs, kind, **match):
    for k, d, _ in recs:
        if k == kind and all(d.get(a) == str(b) for a, b in match.items()):
            return d
    return None


def meminfo(recs, stage):
    m = {}
    for k, _, body in recs:
        if k == "meminfo":
            w = body.split()
            if len(w) >= 4 and w[1] == stage:
                m[w[2].rstrip(":")] = int(w[3])
    return m


def tput(recs, placement, thp):
    """The throughput lines of one placement and buffer kind, one a round."""
    return [d for k, d, body in recs
            if k == "tput" and d.get("placement") == placement
            and "throughput" in body.split() and d.get("thp") == str(thp)]


def ratio(a, b):
    try:
        return a / b if b else None
    except TypeError:
        return None


def spread(v):
    """Half the interquartile range relative to the median (0.1 = +-10%)."""
    v = sorted(v)
    if len(v) < 4:
        return None
    q = statistics.quantiles(v, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(v)


def verdict(r, ok, noises):
    """met?, or "inconclusive" when the samples scatter more than the
    ratio is away from 1 (the target cannot be resolved on this host)."""
    noises = [n for n in noises if n is not None]
    if r is None:
        return False
    if noises and abs(r - 1) < max(noises):
        return f"inconclusive (noise +-{max(noises) * 100:.0f}%)"
    return ok


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return s + unit


def main():
    logdir = sys.argv[1]
    meta = {}
    if os.path.exists(os.path.join(logdir, "meta.json")):
        meta = json.load(open(os.path.join(logdir, "meta.json")))
    logs = {n: parse(os.path.join(logdir, n + ".log"))
            for n in ("series-4level", "base-4level", "series-5level",
                      "base-5level")}
    s4, b4 = logs["series-4level"], logs["base-4level"]
    rows = []

    def row(fig, what, series, legacy, r, target, met, note=""):
        rows.append({"figure": fig, "what": what, "series": series,
                     "legacy": legacy, "ratio": r, "target": target,
                     "met": met, "note": note})

    # (1) reservation
    rw = first(s4, "reserve", api="window")
    rb = first(b4, "reserve", api="legacy")
    rs = first(s4, "reserve", api="legacy")
    g = lambda d, k: int(d[k]) if d and d.get(k) not in (None, "") else None
    for key, label in (("total_ns", "total"), ("first_ns", "call #1"),
                       ("last_ns", "call #1000"), ("max_ns", "slowest call")):
        sv, lv = g(rw, key), g(rb, key)
        sp = ratio(lv, sv)
        if key == "total_ns":
            row("reservation", f"1000 x 256 MiB, {label} (ms)",
                sv / 1e6 if sv else None, lv / 1e6 if lv else None, sp,
                ">=100x faster", sp is not None and sp >= 100,
                "ratio = legacy/series; legacy on the series kernel: "
                f"{fmt(g(rs, key) / 1e6 if g(rs, key) else None)} ms")
        else:
            row("reservation", f"{label} (us)", sv / 1e3 if sv else None,
                lv / 1e3 if lv else None, sp, "", "",
                "ratio = legacy/series")
    f1, l1 = g(rw, "first_ns"), g(rw, "last_ns")
    growth = ratio(l1, f1)
    row("reservation", "series: call #1000 / call #1", growth,
        ratio(g(rb, "last_ns"), g(rb, "first_ns")), None, "<=2x",
        growth is not None and growth <= 2,
        "legacy column: the same quotient for request_free_mem_region()")
    errs = [d for d in (rw, rb, rs) if d and d.get("err") != "0"]
    if errs or not rw or not rb:
        row("reservation", "errors", str([d.get("err") for d in errs]), "",
            None, "none", False, "a reservation failed or was not run")

    # (2) registration: medians over all samples of each (api, size)
    def reg_samples(recs, api, size, key):
        return [int(d[key]) for k, d, _ in recs
                if k == "register" and d.get("api") == api
                and d.get("size") == str(size) and key in d]
    sizes = []
    for kd, d, _ in s4:
        if kd == "register" and d.get("api") == "window" and \
                "reg_median_ns" in d and int(d["size"]) not in sizes:
            sizes.append(int(d["size"]))
    for size in sizes:
        for key, label in (("reg_median_ns", "memremap_pages"),
                           ("unreg_median_ns", "memunmap_pages")):
            sw = reg_samples(s4, "window", size, key)
            bl = reg_samples(b4, "legacy", size, key)
            sl = reg_samples(s4, "legacy", size, key)
            med = lambda v: statistics.median(v) / 1e6 if v else None
            sv, lv = med(sw), med(bl)
            r = ratio(sv, lv)
            r2 = ratio(sv, med(sl))
            row("registration", f"{label} {size >> 30} GiB, median of "
                f"{len(sw)}/{len(bl)} (ms)", sv, lv, r, "<=1.05",
                verdict(r, r is not None and r <= 1.05,
                        [spread(sw), spread(bl)]),
                "ratio = series/legacy (base kernel); legacy placement on "
                f"the series kernel, same boot: {fmt(med(sl))} ms (ratio "
                f"{fmt(r2)}); samples ms series "
                f"{[round(x / 1e6, 1) for x in sw]} legacy "
                f"{[round(x / 1e6, 1) for x in bl]}")

    # (3) migration throughput
    for thp, label in ((0, "1024 pages (hmm-tests size)"),
                       (1, "512 pages, THP (2 MiB)")):
        ts = tput(s4, "window", thp)
        tb = tput(b4, "legacy", thp)
        tl = tput(s4, "legacy-same-kernel", thp)
        med = lambda ls, key: (statistics.median(float(d[key]) for d in ls)
                               if ls else None)
        clean = lambda ls: bool(ls) and all(d["bad_words"] == "0" and
                                            d["short_migrations"] == "0"
                                            for d in ls)
        for key, dirn in (("to_dev_pps", "to device"), ("to_sys_pps", "to system")):
            sv, lv, slv = med(ts, key), med(tb, key), med(tl, key)
            r = ratio(sv, lv)
            r2 = ratio(sv, slv)
            ok = r is not None and r >= 0.98 and clean(ts) and clean(tb)
            if clean(ts) and clean(tb):
                ok = verdict(r, ok, [spread([float(d[key]) for d in ts]),
                                     spread([float(d[key]) for d in tb])])
            row("migration", f"{label} {dirn}, pages/s (median of "
                f"{len(ts)} round medians)", sv, lv, r, ">=0.98", ok,
                "ratio = series/legacy (base kernel); data checked every "
                "round trip; test_hmm legacy_placement=1 on the series "
                f"kernel, same boot, rounds interleaved: {fmt(slv)} pages/s "
                f"(ratio {fmt(r2)}); rounds series "
                f"{[round(float(d[key])) for d in ts]} base "
                f"{[round(float(d[key])) for d in tb]} same-kernel legacy "
                f"{[round(float(d[key])) for d in tl]}")

    # (4) hot paths
    hp = {}
    if os.path.exists(os.path.join(logdir, "hotpaths.json")):
        hp = json.load(open(os.path.join(logdir, "hotpaths.json")))
    funcs = hp.get("functions", [])
    count = lambda st: sum(1 for f in funcs if f["status"] == st)
    consts = sorted({c for f in funcs for c in f.get("constants", [])})
    row("hot paths", f"{len(funcs)} callers of pfn_to_page/page_to_pfn/"
        "page_zonenum/softleaf decoders: identical code",
        count("identical"), len(funcs), None, "all identical",
        bool(funcs) and count("identical") == len(funcs),
        f"{count('constants-only')} differ only in immediates "
        f"({', '.join(consts)}), {count('different')} differ otherwise, "
        f"{count('missing')} missing")
    tb_, ts_ = hp.get("size_base", {}), hp.get("size_series", {})
    if tb_:
        row("hot paths", "vmlinux .text bytes", ts_.get(".text"),
            tb_.get(".text"), ratio(ts_.get(".text"), tb_.get(".text")),
            "", "", "whole image, not only hot paths")

    # (5) memory
    for lvl in ("4", "5"):
        sl, bl = logs[f"series-{lvl}level"], logs[f"base-{lvl}level"]
        if not sl or not bl:
            row("memory", f"{lvl}-level guest", None, None, None, "", False,
                "guest not run")
            continue
        pg_s = first(sl, "paging")
        ms, mb = meminfo(sl, "boot"), meminfo(bl, "boot")
        for key in ("MemTotal", "MemFree", "Slab", "Percpu"):
            sv, lv = ms.get(key), mb.get(key)
            delta = (sv - lv) if sv is not None and lv is not None else None
            row("memory", f"{lvl}-level boot {key} (kB)", sv, lv,
                delta, "no growth" if key == "MemTotal" else "",
                (delta is not None and delta >= 0) if key == "MemTotal" else "",
                "ratio column = series - legacy, kB")
        img = lambda sz: sum(sz.get(k, 0) for k in (".text", ".rodata",
                                                   ".data", ".bss"))
        img_delta = (img(hp.get("size_series", {})) -
                     img(hp.get("size_base", {}))) if hp else None
        if img_delta is not None:
            row("memory", "kernel image .text+.rodata+.data+.bss (bytes)",
                img(hp["size_series"]), img(hp["size_base"]), img_delta, "",
                "", "reserved at boot, so it counts in MemTotal; includes the "
                "series' built-in KUnit suites; ratio column = series - "
                "legacy, bytes") if lvl == "4" else None
        ins, inb = first(sl, "info"), first(bl, "info")
        if ins and inb:
            sv, lv = int(ins["mem_section_root_bytes"]), int(inb["mem_section_root_bytes"])
            row("memory", f"{lvl}-level mem_section root array (bytes)", sv,
                lv, sv - lv, "no growth", sv == lv,
                f"NR_SECTION_ROOTS {ins['nr_section_roots']} vs "
                f"{inb['nr_section_roots']} x 8 B, allocated from memblock at "
                "boot; ratio column = series - legacy, bytes")
        w0 = first(sl, "window")
        w1 = first(sl, "window", window_roots_allocated=1)
        if w0 and "window_root_bytes" in w0:
            row("memory", f"{lvl}-level window section roots allocated at boot (bytes)",
                0 if w0["window_roots_allocated"] == "0" else int(w0["window_root_bytes"]),
                0, None, "0", w0["window_roots_allocated"] == "0",
                "devmem_mem_section, read by the module before any registration")
            row("memory", f"{lvl}-level window section roots after the first "
                "registration (bytes)",
                int(w1["window_root_bytes"]) if w1 else None, None, None, "",
                "", "kvcalloc()ed by sparse_index_init() once, never freed")
        hold = meminfo(sl, "holding")
        before = meminfo(sl, "before-hold")
        h = first(sl, "hold")
        if hold and before and h:
            used = before.get("MemFree", 0) - hold.get("MemFree", 0)
            npg = int(h["size"]) // 4096
            row("memory", f"{lvl}-level MemFree drop while "
                f"{int(h['size']) >> 30} GiB are registered (kB)", used, None,
                None, "", "", f"memmap {npg} pages x {ins['sizeof_page']} B = "
                f"{npg * int(ins['sizeof_page']) >> 10} kB")

    # (6) scale
    h = first(s4, "hold")
    mg = first(s4, "migrate", err="0") or first(s4, "migrate")
    hb = None
    for k, d, body in s4:
        if k == "migrate" and "not_present_after_migrate" in d:
            hb = d
    uh = first(s4, "unhold")
    if h and h.get("err") == "0":
        gib = int(h["size"]) >> 30
        ok = (gib >= 64 and mg and hb and mg.get("err") == "0"
              and mg["migrated"] == hb["npages"]
              and hb["bad_words_after_faults"] == "0"
              and hb["not_present_after_migrate"] == hb["npages"])
        row("scale", f"{gib} GiB device private registered; pages migrated "
            "into its top, faulted back", int(hb["npages"]) if hb else None,
            None, None, ">=64 GiB, data intact", bool(ok),
            (f"pfns [{mg['range_start_pfn']}, {mg['range_end_pfn']}), device "
             f"pages used {mg['lowest_pfn']}..{mg['highest_pfn']}, migrated "
             f"{mg['migrated']}/{mg['npages']}, not present after migrate "
             f"{hb['not_present_after_migrate']}, bad words after CPU faults "
             f"{hb['bad_words_after_faults']}, migrate_to_ram calls "
             f"{uh['faults'] if uh else 'n/a'}") if mg and hb else
            "migration did not run")
    else:
        row("scale", "register >=64 GiB", None, None, None, ">=64 GiB", False,
            f"hold failed: {h}")

    # bad input
    for name in ("series-4level", "base-4level"):
        bad = [d for k, d, _ in logs[name] if k == "badinput"]
        acc = [b for k, d, b in logs[name] if k == "badinput" and
               d.get("result") != "rejected"]
        rc_ = meta.get("vm_rc", {}).get(name)
        row("bad input", f"{name}: malformed or impossible commands to "
            "devmem_bench rejected", len(bad) - len(acc), None, None,
            "all rejected, no WARN", bool(bad) and not acc and rc_ == 0,
            "scripts/vm exit 0 means no WARNING/BUG/Oops in the console; "
            "includes a 64 TiB register (memmap larger than the guest)"
            + (f"; accepted: {acc}" if acc else ""))

    status = {n: meta.get("vm_rc", {}).get(n) for n in logs}
    result = {"meta": meta, "vm_rc": status, "rows": rows,
              "hotpaths": hp, "raw": {n: [b for _, _, b in r if not b.startswith(("meminfo", "reserve_calls"))]
                                      for n, r in logs.items()},
              "reserve_calls": {n: [b for _, _, b in r if b.startswith("reserve_calls")]
                                for n, r in logs.items()}}
    with open(os.path.join(logdir, "bench.json"), "w") as f:
        json.dump(result, f, indent=1)

    lines = ["| figure | measurement | series | legacy | ratio | target | met? |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        met = r["met"]
        met = {True: "yes", False: "**no**", "": ""}.get(met, met) \
            if isinstance(met, bool) or met == "" else str(met)
        rr = r["ratio"]
        lines.append(f"| {r['figure']} | {r['what']} | {fmt(r['series'])} | "
                     f"{fmt(r['legacy'])} | "
                     f"{fmt(rr) + ('x' if isinstance(rr, float) else '') if rr is not None else ''} | "
                     f"{r['target']} | {met} |")
    notes = [f"- {r['figure']}, {r['what']}: {r['note']}" for r in rows if r["note"]]
    text = "\n".join(lines) + "\n\nNotes:\n" + "\n".join(notes) + "\n"
    text += ("\nGuest exit codes (scripts/vm): " +
             ", ".join(f"{n} {v}" for n, v in status.items()) + "\n")
    with open(os.path.join(logdir, "bench.txt"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
