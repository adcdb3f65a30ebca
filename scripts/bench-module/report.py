#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the console logs of scripts/bench's guests into a table and JSON.

    report.py LOGDIR

LOGDIR holds the guest consoles {base,series}-4level[-icount].log,
series-4level-icount2.log (second icount boot, determinism),
{base,series}-5level.log, series-scale-{4,5}level.log, and hotpaths.json and
meta.json (written by scripts/bench).  The verdicts use the icount
(deterministic, instruction-counting) boots when there are any, else the
wall-clock ones; the other mode's ratio is printed as a second opinion.  Writes LOGDIR/bench.json and
LOGDIR/bench.txt and prints the table.  Every number comes from the logs.
"""
import json
import os
import random
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


def boot_ci(a, b, stat=statistics.median, n=2000):
    """95 % bootstrap interval of stat(a)/stat(b): both sample sets
    resampled with replacement (fixed seed: the same logs give the same
    interval)."""
    if not a or not b:
        return None
    rng = random.Random(1)
    rs = sorted(stat(rng.choices(a, k=len(a))) / stat(rng.choices(b, k=len(b)))
                for _ in range(n))
    return rs[int(0.025 * n)], rs[int(0.975 * n) - 1]


def judge(ci, target, le):
    """yes when the whole interval meets the target, no when none of it
    does, else inconclusive (the target is inside the uncertainty)."""
    if ci is None:
        return False
    lo, hi = ci
    if le:
        return True if hi <= target else (False if lo > target else
                                          "inconclusive")
    return True if lo >= target else (False if hi < target else "inconclusive")


def fmtr(r):
    """A ratio: four decimals near 1, where the targets are."""
    if r is None:
        return ""
    if isinstance(r, float):
        return (f"{r:.4f}" if 0.1 <= abs(r) < 10 else fmt(r)) + "x"
    return fmt(r)


def fmt_ci(ci):
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000 or isinstance(v, int):
        s = f"{v:,.0f}"
    elif abs(v) >= 100:
        s = f"{v:.1f}"
    elif abs(v) >= 10:
        s = f"{v:.2f}"
    else:
        s = f"{v:.4g}"
    return s + unit


def calls(recs, api):
    """Every timed call of the (non-warm-up) reservation run of api, in
    order: ns of call #1, #2, ..."""
    out = []
    for k, d, body in recs:
        if k == "reserve_calls" and d.get("api") == api:
            out += [int(x) for x in body.split("ns=", 1)[1].split()]
    return out


def fit(v):
    """Least squares a + b * i over calls i = 0.. (i = live ranges before
    the call): (a, b)."""
    n = len(v)
    if n < 2:
        return None
    mx, my = (n - 1) / 2, statistics.fmean(v)
    b = sum((i - mx) * (y - my) for i, y in enumerate(v)) / \
        sum((i - mx) ** 2 for i in range(n))
    return my - b * mx, b


def main():
    logdir = sys.argv[1]
    meta = {}
    if os.path.exists(os.path.join(logdir, "meta.json")):
        meta = json.load(open(os.path.join(logdir, "meta.json")))
    names = ("series-4level", "base-4level", "series-4level-icount",
             "base-4level-icount", "series-4level-icount2", "series-5level",
             "base-5level", "series-scale-4level", "series-scale-5level")
    logs = {n: parse(os.path.join(logdir, n + ".log")) for n in names}
    # The verdicts come from the icount boots when there are any.
    icount = bool(logs["series-4level-icount"] and logs["base-4level-icount"])
    P = "-icount" if icount else ""
    s4, b4 = logs["series-4level" + P], logs["base-4level" + P]
    # The other mode, for the second-opinion column.
    W = "" if icount else None
    ws4 = logs["series-4level"] if W is not None else []
    wb4 = logs["base-4level"] if W is not None else []
    unit = "ns = instructions (icount)" if icount else "wall-clock ns"
    rows = []

    def row(fig, what, series, legacy, r, target, met, note="", ci=None,
            wall=None):
        rows.append({"figure": fig, "what": what, "series": series,
                     "legacy": legacy, "ratio": r, "ci": ci, "wall": wall,
                     "target": target, "met": met, "note": note})

    g = lambda d, k: int(d[k]) if d and d.get(k) not in (None, "") else None

    # Boot-to-boot difference of the icount medians (second series boot):
    # the intervals below are widened by the largest one, since samples of
    # one boot cannot show it.
    s2 = logs["series-4level-icount2"] if icount else []
    drift = []
    if s2:
        for size in {d1["size"] for k_, d1, _ in s4
                     if k_ == "register" and "reg_median_ns" in d1}:
            for key in ("reg_median_ns", "unreg_median_ns"):
                a = [int(d[key]) for k_, d, _ in s4 if k_ == "register"
                     and d.get("api") == "window" and d.get("size") == size]
                b = [int(d[key]) for k_, d, _ in s2 if k_ == "register"
                     and d.get("api") == "window" and d.get("size") == size]
                if a and b:
                    drift.append(abs(statistics.median(a) - statistics.median(b))
                                 / statistics.median(a))
        for thp in (0, 1):
            for key in ("to_dev_pps", "to_sys_pps"):
                a = [float(d[key]) for d in tput(s4, "window", thp)]
                b = [float(d[key]) for d in tput(s2, "window", thp)]
                if a and b:
                    drift.append(abs(statistics.median(a) - statistics.median(b))
                                 / statistics.median(a))
    dmax = max(drift) if drift else 0.0

    def widen(ci):
        return (ci[0] * (1 - dmax), ci[1] * (1 + dmax)) if ci else ci

    # (1) reservation: every call timed, after a warm-up call
    rw = first(s4, "reserve", api="window")
    rb = first(b4, "reserve", api="legacy")
    rs = first(s4, "reserve", api="legacy")
    cw, cb = calls(s4, "window"), calls(b4, "legacy")
    n = len(cw)
    sv, lv = g(rw, "total_ns"), g(rb, "total_ns")
    wr = ratio(g(first(wb4, "reserve", api="legacy"), "total_ns"),
               g(first(ws4, "reserve", api="window"), "total_ns"))
    row("reservation", f"{n} x 256 MiB, total (ms)", sv / 1e6 if sv else None,
        lv / 1e6 if lv else None, ratio(lv, sv), ">=100x faster",
        ratio(lv, sv) is not None and ratio(lv, sv) >= 100,
        "ratio = legacy/series; legacy on the series kernel: "
        f"{fmt(g(rs, 'total_ns') / 1e6 if g(rs, 'total_ns') else None)} ms",
        wall=wr)
    for i in (1, 10, 100, 500, 1000):
        if i <= n and i <= len(cb):
            row("reservation", f"call #{i} ({i - 1} live ranges) (us)",
                cw[i - 1] / 1e3, cb[i - 1] / 1e3, ratio(cb[i - 1], cw[i - 1]),
                "", "", "ratio = legacy/series")
    for api, label in (("window", "series"), ("mtree", "model: maple tree")):
        c = calls(s4, api)
        f = fit(c)
        if not c:
            continue
        gr = ratio(c[-1], c[0])
        row("reservation", f"{label}: call #{len(c)} / call #1", gr,
            ratio(cb[-1], cb[0]) if api == "window" and cb else None, None,
            "<=2x", gr is not None and gr <= 2,
            f"call #1 {c[0]} ns, call #{len(c)} {c[-1]} ns ({unit}); least "
            f"squares {f[0]:.0f} + {f[1]:.2f} ns x live ranges; median of "
            f"calls 1-10 {statistics.median(c[:10]):.0f}, of the last 10 "
            f"{statistics.median(c[-10:]):.0f}; max {max(c)}"
            + ("; legacy column: the same quotient for "
               "request_free_mem_region() on base" if api == "window" else ""))
    errs = [d for d in (rw, rb, rs) if d and d.get("err") != "0"]
    if errs or not rw or not rb:
        row("reservation", "errors", str([d.get("err") for d in errs]), "",
            None, "none", False, "a reservation failed or was not run")

    # (2) registration: all samples of each (api, size), warm-ups left out
    def reg_samples(recs, api, size, key):
        return [int(d[key]) for k, d, _ in recs
                if k == "register" and d.get("api") == api
                and d.get("size") == str(size) and key in d]
    sizes = []
    for kd, d, _ in s4:
        if kd == "register" and d.get("api") == "window" and \
                "reg_median_ns" in d and int(d["size"]) not in sizes:
            sizes.append(int(d["size"]))
    med = lambda v: statistics.median(v) / 1e6 if v else None
    for size in sizes:
        for key, label in (("reg_median_ns", "memremap_pages"),
                           ("unreg_median_ns", "memunmap_pages")):
            sw = reg_samples(s4, "window", size, key)
            bl = reg_samples(b4, "legacy", size, key)
            sl = reg_samples(s4, "legacy", size, key)
            sv, lv = med(sw), med(bl)
            r = ratio(sv, lv)
            ci = widen(boot_ci(sw, bl))
            wr = ratio(med(reg_samples(ws4, "window", size, key)),
                       med(reg_samples(wb4, "legacy", size, key)))
            row("registration", f"{label} {size >> 30} GiB, median of "
                f"{len(sw)}/{len(bl)} (ms)", sv, lv, r, "<=1.05",
                judge(ci, 1.05, True),
                "ratio = series/legacy (base kernel); legacy placement on "
                f"the series kernel, same boot: {fmt(med(sl))} ms (ratio "
                f"{fmt(ratio(sv, med(sl)))}); samples ms series "
                f"{[round(x / 1e6, 3) for x in sw]} legacy "
                f"{[round(x / 1e6, 3) for x in bl]}", ci=ci, wall=wr)

    # (3) migration throughput: one sample per round (its median)
    for thp, label in ((0, "1024 pages (hmm-tests size)"),
                       (1, "512 pages, THP (2 MiB)")):
        ts = tput(s4, "window", thp)
        tb = tput(b4, "legacy", thp)
        tl = tput(s4, "legacy-same-kernel", thp)
        mm = lambda ls, key: (statistics.median(float(d[key]) for d in ls)
                              if ls else None)
        clean = lambda ls: bool(ls) and all(d["bad_words"] == "0" and
                                            d["short_migrations"] == "0"
                                            for d in ls)
        for key, dirn in (("to_dev_pps", "to device"), ("to_sys_pps", "to system")):
            sv, lv, slv = mm(ts, key), mm(tb, key), mm(tl, key)
            r = ratio(sv, lv)
            xs = [float(d[key]) for d in ts]
            xb = [float(d[key]) for d in tb]
            ci = widen(boot_ci(xs, xb))
            ok = judge(ci, 0.98, False) if clean(ts) and clean(tb) else False
            wr = ratio(mm(tput(ws4, "window", thp), key),
                       mm(tput(wb4, "legacy", thp), key))
            row("migration", f"{label} {dirn}, pages/s (median of "
                f"{len(ts)}/{len(tb)} round medians)", sv, lv, r, ">=0.98",
                ok, "ratio = series/legacy (base kernel); data checked every "
                "round trip; round medians min..max series "
                f"{fmt(min(xs) if xs else None)}..{fmt(max(xs) if xs else None)}"
                f", base {fmt(min(xb) if xb else None)}..{fmt(max(xb) if xb else None)}"
                "; test_hmm legacy_placement=1 on the series "
                f"kernel, same boot, rounds interleaved: {fmt(slv)} pages/s "
                f"(ratio {fmt(ratio(sv, slv))}); rounds series "
                f"{[round(x) for x in xs]} base {[round(x) for x in xb]} "
                f"same-kernel legacy {[round(float(d[key])) for d in tl]}",
                ci=ci, wall=wr)

    # (3b) pfn-less lookup model against pfn_to_page()/page_to_pfn(), and
    # its share of one device private fault round trip (CPU fault ->
    # migrate_to_ram -> page back), on the series kernel
    fb = None
    for k, d, body in s4:
        if k == "migrate" and "fault_back_ns" in d:
            fb = (int(d["fault_back_ns"]) - int(d.get("recheck_ns", 0))) \
                / int(d["npages"])
    for k, d, _ in s4:
        if k != "lookup" or d.get("err") != "0":
            continue
        p2p, mt = int(d["pfn_to_page_ps"]) / 1e3, int(d["mtree_ps"]) / 1e3
        p2f, p2o = int(d["page_to_pfn_ps"]) / 1e3, int(d["page_to_off_ps"]) / 1e3
        share = ratio(mt - p2p, fb)
        row("lookup model", f"offset->page, maple tree of {d['nranges']} "
            f"pagemap(s) vs pfn_to_page(), ns per lookup", mt, p2p,
            ratio(mt, p2p) if p2p else None, "", "",
            f"{d['nlookups']} lookups of pseudo-random pages of a "
            f"{int(d['pages']) >> 18} GiB range, {d['range_pages']} pages per "
            f"pagemap; loop overhead subtracted ({unit}); extra cost per lookup "
            f"{mt - p2p:.1f} ns = {share * 100 if share else 0:.2f} % of one "
            f"fault round trip ({fmt(fb)} ns per page, CPU fault -> "
            "migrate_to_ram -> data back, devmem_bench/hmm_bench)")
        if d["nranges"] == "1":
            row("lookup model", "page->offset, page_pgmap() + pagemap base "
                "vs page_to_pfn(), ns per lookup", p2o, p2f,
                ratio(p2o, p2f) if p2f else None, "", "",
                f"same pages; {unit}; extra {p2o - p2f:.1f} ns = "
                f"{ratio(p2o - p2f, fb) * 100 if fb else 0:.2f} % of a fault "
                "round trip")
    if fb:
        row("lookup model", "fault round trip per page (ns)", fb, None, None,
            "", "", "hmm_bench migrate: CPU read of pages migrated by "
            "devmem_bench, one migrate_to_ram each, minus the same read "
            f"with every page present; {unit}")

    # determinism: the second icount boot of the series kernel
    if icount and s2:
        pairs = []
        for api in ("window", "mtree"):
            a, b = calls(s4, api), calls(s2, api)
            if a and b:
                pairs.append((f"reserve {api} total", sum(a), sum(b)))
        for size in sizes:
            for key in ("reg_median_ns", "unreg_median_ns"):
                pairs.append((f"{key} {size >> 30} GiB",
                              statistics.median(reg_samples(s4, "window", size, key)),
                              statistics.median(reg_samples(s2, "window", size, key))))
        for thp in (0, 1):
            for key in ("to_dev_pps", "to_sys_pps"):
                a = [float(d[key]) for d in tput(s4, "window", thp)]
                b = [float(d[key]) for d in tput(s2, "window", thp)]
                if a and b:
                    pairs.append((f"tput thp={thp} {key}",
                                  statistics.median(a), statistics.median(b)))
        la = [d for k, d, _ in s4 if k == "lookup"]
        lb = [d for k, d, _ in s2 if k == "lookup"]
        for a, b in zip(la, lb):
            pairs.append((f"lookup {a['nranges']} mtree_ns",
                          int(a["mtree_ns"]), int(b["mtree_ns"])))
        diffs = [(abs(a - b) / a if a else 0, w, a, b) for w, a, b in pairs]
        worst = max(diffs) if diffs else None
        row("determinism", "series icount boot 1 vs boot 2: largest relative "
            f"difference of {len(diffs)} medians (fraction)", worst[0] if worst else None,
            None, None, "", "",
            f"worst: {worst[1]} {worst[2]:.0f} vs {worst[3]:.0f}; all: " +
            ", ".join(f"{w} {x * 100:.3f}%" for x, w, _, _ in sorted(diffs, reverse=True))
            if worst else "")

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
        sl, bl = ((s4, b4) if lvl == "4" else
                  (logs["series-5level"], logs["base-5level"]))
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
                "devpriv_mem_section, read by the module before any registration")
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

    # (6b) scale: one large registration in an 8 GiB guest, 4- and 5-level
    for lvl in ("4", "5"):
        sc = logs[f"series-scale-{lvl}level"]
        if not sc:
            continue
        h = first(sc, "hold")
        mg = first(sc, "migrate", err="0") or first(sc, "migrate")
        hb_ = [d for k, d, _ in sc if k == "migrate" and "fault_back_ns" in d]
        uh = first(sc, "unhold")
        wsec = next((b.split()[1] for k, d, b in sc if k == "scale_wall_s"), None)
        if not h or h.get("err") != "0":
            row("scale", f"{lvl}-level: one large registration (8 GiB guest)",
                None, None, None, ">=256 GiB, data intact", False,
                f"hold failed: {h}")
            continue
        hb1 = hb_[0] if hb_ else None
        ok = bool(mg and hb1 and mg.get("err") == "0" and
                  mg["migrated"] == hb1["npages"] and
                  hb1["bad_words_after_faults"] == "0" and
                  hb1["not_present_after_migrate"] == hb1["npages"] and
                  int(h["size"]) >= 256 << 30)
        row("scale", f"{lvl}-level: {int(h['size']) >> 30} GiB registered in "
            "an 8 GiB guest, pages migrated into its top and read back",
            int(hb1["npages"]) if hb1 else None, None, None,
            ">=256 GiB, data intact", ok,
            f"memremap_pages {int(h['reg_ns']) / 1e9:.2f} s, migrate "
            f"{int(mg['ns']) / 1e9 if mg else 0:.3f} s, read back "
            f"{int(hb1['fault_back_ns']) / 1e9 if hb1 else 0:.3f} s, "
            f"memunmap_pages {int(uh['unreg_ns']) / 1e9 if uh else 0:.2f} s "
            f"(wall-clock TCG); whole step in the guest {wsec} s; pfns "
            f"[{mg['range_start_pfn']}, {mg['range_end_pfn']}), pages used "
            f"{mg['lowest_pfn']}..{mg['highest_pfn']}" if mg else "no migration")

    # bad input
    for name in ("series-4level" + P, "base-4level" + P):
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

    # A run without the 4-level guests (--only-scale) has only its own rows.
    if not (s4 or b4):
        rows[:] = [r for r in rows if r["figure"] in ("scale", "hot paths")
                   and "register >=64 GiB" not in r["what"]]
    status = {n: meta.get("vm_rc", {}).get(n) for n in logs}
    result = {"meta": meta, "vm_rc": status, "rows": rows,
              "hotpaths": hp, "raw": {n: [b for _, _, b in r if not b.startswith(("meminfo", "reserve_calls"))]
                                      for n, r in logs.items()},
              "reserve_calls": {n: [b for _, _, b in r if b.startswith("reserve_calls")]
                                for n, r in logs.items()}}
    with open(os.path.join(logdir, "bench.json"), "w") as f:
        json.dump(result, f, indent=1)

    other = "wall-clock ratio" if icount else "icount ratio"
    lines = [f"| figure | measurement | series | legacy | ratio | 95 % interval | {other} | target | met? |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = r["met"]
        met = {True: "yes", False: "**no**", "": ""}.get(met, met) \
            if isinstance(met, bool) or met == "" else str(met)
        rr = r["ratio"]
        lines.append(f"| {r['figure']} | {r['what']} | {fmt(r['series'])} | "
                     f"{fmt(r['legacy'])} | "
                     f"{fmtr(rr)} | "
                     f"{fmt_ci(r['ci'])} | {fmtr(r['wall'])} | "
                     f"{r['target']} | {met} |")
    notes = [f"- {r['figure']}, {r['what']}: {r['note']}" for r in rows if r["note"]]
    text = "\n".join(lines) + "\n\nNotes:\n" + "\n".join(notes) + "\n"
    if dmax:
        text += (f"\nIntervals widened by {dmax * 100:.2f} %, the largest "
                 "difference of a registration or migration median between "
                 "two icount boots of the series kernel.\n")
    text += (f"\nClock: {'icount (QEMU -icount shift=0,sleep=off, one vCPU: 1 ns = 1 instruction)' if icount else 'wall-clock TCG'}"
             "; 95 % interval: bootstrap of the ratio of medians; met? is yes "
             "when the whole interval meets the target, no when none of it "
             "does, else inconclusive.\n")
    text += ("\nGuest exit codes (scripts/vm): " +
             ", ".join(f"{n} {v}" for n, v in status.items()) + "\n")
    with open(os.path.join(logdir, "bench.txt"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
