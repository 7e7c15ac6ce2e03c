"""The reader's views of a report: family-best headline, training bill, thread speed-ups, scaling fits,
the interactive page (HTML content, and a real headless browser), readable statuses, the paper's statements.

Synthetic sweep (laplace_bilinear, n = 32 and 64; times in seconds, targets at MSR 1e-10):
- cg (krylov) as in test_report: setup+solve to 1e-10 = 3.0 (n=32), 6.0 (n=64).
- minres (krylov): cg's curve at half cg's times at n=32 (total 1.75), twice cg's at n=64 (total 11.0).
- pyamg_sa (multigrid): MSR 1, 1e-8, 1e-16 at t = 0, 0.25, 0.5 (x2 at n=64), setup 0.5:
  total 0.8125 (n=32), 1.625 (n=64).
- adam (first_order): reaches 1e-10 at n=32 (total 5.6), diverges at n=64.
- dst (direct): setup 2.0, one step of 0.003 s.
- metamizer (neural, training_wall_s = 3600 recorded): MSR 1, 1e-6, 1e-12 at t = 0, 0.25, 0.5, setup 0.1:
  total 0.51667 (n=32); at t = 0, 5, 10 at n=64: total 8.43.
- metamizer_paper (neural, no training time recorded): the same curve as metamizer, 2x slower.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.report import costs, groups, metrics, style
from harness.report.__main__ import main
from tests.test_report import FAMILY, PROBLEM, write_job

FAMILY.setdefault("metamizer_paper", "neural")
TRAIN = {"training_wall_s": 3600.0, "training_steps": 5000, "training_hardware": "Test GPU 1"}
CG = [1.0, 1e-4, 1e-8, 1e-12, 1e-16]


def views_sweep(root, sweep="views", stamp="2026-02-01_00-00-00"):
    kw = {"sweep": sweep, "stamp": stamp}
    for n, s in ((32, 1.0), (64, 2.0)):
        write_job(root, n=n, solver="cg", label="cg", iters=[0, 1, 2, 3, 4], times=[0, s, 2 * s, 3 * s, 4 * s],
                  msr=CG, status="budget", message="max_iters reached", setup=0.5 * s, **kw)
        m = 0.5 if n == 32 else 4.0
        write_job(root, n=n, solver="minres", label="minres", iters=[0, 1, 2, 3, 4],
                  times=[0, m, 2 * m, 3 * m, 4 * m], msr=CG, status="ok", setup=0.5 * s / (1 if n == 64 else 1),
                  **kw)
        write_job(root, n=n, solver="pyamg_sa", label="pyamg_sa", iters=[0, 1, 2], times=[0, 0.25 * s, 0.5 * s],
                  msr=[1.0, 1e-8, 1e-16], status="target", setup=0.5 * s, **kw)
        write_job(root, n=n, solver="dst", label="dst", iters=[0, 1], times=[0, 0.003], msr=[1.0, 1e-30],
                  status="ok", setup=2.0, **kw)
        mt = 0.25 if n == 32 else 5.0
        write_job(root, n=n, solver="metamizer", label="metamizer", iters=[0, 1, 2], times=[0, mt, 2 * mt],
                  msr=[1.0, 1e-6, 1e-12], status="stalled", message="returned above the target", setup=0.1,
                  info=TRAIN, **kw)
        write_job(root, n=n, solver="metamizer_paper", label="metamizer_paper", iters=[0, 1, 2],
                  times=[0, 2 * mt, 4 * mt], msr=[1.0, 1e-6, 1e-12], status="budget", setup=0.1,
                  info={"hidden": 20}, **kw)
    # adam: three repeats at n=32 with two different messages; diverges at n=64
    for repeat, msg in enumerate(("max_iters reached", "max_iters reached", "wall clock budget used")):
        write_job(root, n=32, solver="adam", label="adam", iters=[0, 1, 2, 3], times=[0, 2, 4, 6],
                  msr=[1.0, 1e-3, 1e-7, 1e-11], status="budget", message=msg, setup=0.1, repeat=repeat, **kw)
    write_job(root, n=64, solver="adam", label="adam", iters=[0, 1, 2, 3], times=[0, 1, 2, 3],
              msr=[1.0, 10.0, 1e4, math.inf], status="diverged", message="MSR exceeded 1e6 x initial", setup=0.1,
              **kw)
    return root / sweep / stamp


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return views_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def cells(sweep):
    df = metrics.prepare(results.load(sweep))
    jobs = metrics.job_table(df, metrics.targets_for(1e-10))
    return metrics.cell_table(jobs, metrics.targets_for(1e-10))


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    assert main([str(sweep), "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- numbers
def test_family_best_is_the_fastest_setup_plus_solve_per_size(cells):
    picks = metrics.family_best(cells, 1e-10).set_index(["n", "family"])
    assert picks.loc[(32, "krylov"), "label"] == "minres" and picks.loc[(64, "krylov"), "label"] == "cg"
    assert picks.loc[(32, "multigrid"), "total"] == pytest.approx(0.8125)
    assert picks.loc[(32, "direct"), "role"] == "limit" and picks.loc[(32, "direct"), "label"] == "dst"
    # a family that never reaches the target at a size is still shown, marked as not reaching it
    assert picks.loc[(64, "first_order"), "label"] == "adam" and not picks.loc[(64, "first_order"), "reached"]
    neural = picks.xs("neural", level="family")
    assert sorted(neural["label"].unique()) == ["metamizer", "metamizer_paper"]
    assert set(neural["role"]) == {"neural"}


def test_training_bill(sweep, cells):
    df = metrics.prepare(results.load(sweep))
    training = costs.training_of(df, costs.solver_info(sweep)).set_index("label")
    assert training.loc["metamizer", "training_s"] == 3600.0
    assert training.loc["metamizer", "hardware"] == "Test GPU 1"
    assert math.isnan(training.loc["metamizer_paper", "training_s"])
    bill = costs.training_bill(cells, training.reset_index(), 1e-10).set_index(["label", "n"])
    t_meta = 0.1 + 0.25 + 0.25 * 4 / 6
    assert bill.loc[("metamizer", 32), "best"] == "pyamg_sa"
    assert bill.loc[("metamizer", 32), "payback"] == pytest.approx(3600 / (0.8125 - t_meta))
    assert bill.loc[("metamizer", 64), "payback"] == math.inf          # slower per solve than pyamg_sa
    words = {k: costs.payback_words(r) for k, r in zip(bill.index, bill.itertuples(), strict=True)}
    assert words[("metamizer", 32)] == "12,169 solves"
    assert words[("metamizer", 64)] == "never (slower per solve)"
    assert words[("metamizer_paper", 32)] == "training cost not recorded"
    # a model of the authors' recipe is compared with their ~95,000 steps wherever its steps are shown
    assert costs.steps_words(972, 95_000) == "972 (1 % of the authors' ~95,000)"
    assert costs.steps_words(20_000, 95_000) == "20,000 (21 % of the authors' ~95,000)"
    assert costs.steps_words(20_000, None) == "20,000" and costs.steps_words(None, None) == "not recorded"


def test_scaling_fit_uses_the_largest_sizes_and_warns_about_overhead():
    n = np.array([16, 32, 64, 128, 256])
    unknowns = n.astype(float) ** 2
    # t = 1e-6 N^1.5 at the three largest sizes; 100x the trend at n=16 (overhead), 1.5x at n=32 (not flagged)
    t = 1e-6 * unknowns ** 1.5 * np.array([100.0, 1.5, 1, 1, 1])
    cells = pd.DataFrame({"problem": "p", "label": "s", "n": n, "n_unknowns": unknowns, "total@1e-10": t})
    fit = metrics.fit_exponents(cells, 1e-10).iloc[0]
    assert fit["exponent"] == pytest.approx(1.5)
    assert fit["fit_sizes"] == "64, 128, 256" and fit["sizes_used"] == 3
    assert fit["overhead"] == "n=16: 100.0x the fit"


def test_thread_speedups(tmp_path):
    kw = {"sweep": "threads", "stamp": "2026-03-01_00-00-00"}
    for threads, s in ((1, 2.0), (4, 1.0)):
        write_job(tmp_path, n=64, solver="cg", label="cg", iters=[0, 1, 2, 3, 4], times=[0, s, 2 * s, 3 * s, 4 * s],
                  msr=CG, status="budget", setup=0.5 * s, threads=threads, **kw)
    write_job(tmp_path, n=64, solver="dst", label="dst", iters=[0, 1], times=[0, 0.003], msr=[1.0, 1e-30],
              status="ok", setup=0.2, **kw)
    out = tmp_path / "rep"
    assert main([str(tmp_path / "threads"), "--out", str(out), "--no-figures"]) == 0
    md = (out / "summary.md").read_text()
    assert "### What extra cores buy each solver" in md
    assert "| cg | 64 | 1 vs 4 | 6 | 3 | 2x |" in md
    # the two thread counts are two curves, not repeats of one
    assert "| cg [threads=1] |" in md and "| cg [threads=4] |" in md
    # a sweep without thread variants has no such section
    assert main([str(tmp_path / "threads"), "--out", str(tmp_path / "r2"), "--no-figures"]) == 0


def test_no_thread_section_without_thread_variants(report):
    assert "What extra cores buy" not in (report / "summary.md").read_text()


def test_palette_is_fixed_per_solver():
    a = style.palette(["cg", "adam"], ["krylov", "first_order"])
    b = style.palette(["metamizer", "pyamg_sa", "cg", "x(lr=1)"], ["neural", "multigrid", "krylov", "first_order"],
                      ["metamizer", "pyamg_sa", "cg", "x"])
    assert a["cg"] == b["cg"] and len(set(b.values())) == 4
    lr = style.palette(["adam(lr=0.1)", "adam(lr=1)"], ["first_order"] * 2, ["adam", "adam"])
    assert lr["adam(lr=0.1)"] != lr["adam(lr=1)"]


# --------------------------------------------------------------------------- the report
def test_summary_tables_read_as_words(report):
    md = (report / "summary.md").read_text()
    assert "stopped by itself" in md                                # status "stalled"
    assert "above target" not in md                                 # these traces record no stop target
    assert "finished by itself" in md                               # status "ok" (older traces)
    assert "| budget |" not in md and "| stalled |" not in md
    # one message per row: the commonest, with its count
    assert "max_iters reached (2 of 3 runs; 1 other message(s))" in md
    assert "### Training bill of the neural solvers" in md
    assert "| metamizer | 32 | 3,600 | 5,000 | Test GPU 1 |" in md and "12,169 solves" in md
    assert "never (slower per solve)" in md and "training cost not recorded" in md
    assert "fitted over n =" in md


def test_the_report_opens_with_the_verdict(report):
    md = (report / "summary.md").read_text()
    assert md.split("\n## ")[1].startswith("Verdict")                # the first section
    assert md.index("### Verdict: laplace_bilinear") < md.index("How to read this report") < md.index("## All solvers")
    sentence = md.split("**")[1]
    # numbers from the header: metamizer 0.5167 s vs pyamg_sa 0.8125 s at n=32 (1.6x faster), 8.43 vs 1.625 at
    # n=64 (5.2x slower); metamizer_paper 0.9333 vs 0.8125 (1.1x slower), 16.77 vs 1.625 (10x slower)
    assert sentence == (
        "laplace_bilinear, setup + solve time to MSR <= 1e-10: metamizer: 5.2x slower than the fastest iterative "
        "classical solver (pyamg_sa) at n = 64; 1.6x faster than the fastest iterative classical solver (pyamg_sa) "
        "at n = 32. metamizer_paper: 1.1-10x slower than the fastest iterative classical solver (pyamg_sa) at "
        "n = 32 and 64.")
    rows = [ln for ln in md.split("### Verdict: laplace_bilinear")[1].splitlines() if ln.startswith("| 32 |")
            or ln.startswith("| 64 |")]
    assert rows[0] == ("| 32 | metamizer | 0.517 | 1.7 | pyamg_sa | 0.812 | 1.6x faster | dst | 2 | "
                       "3.9x faster |")
    assert [r.split(" | ")[1] for r in rows] == ["metamizer", "metamizer_paper", "metamizer", "metamizer_paper"]
    page = (report / "index.html").read_text()
    assert page.index("<h2 id='verdict'>Verdict</h2>") < page.index("<details>") < page.index("<h2 id='s0'>")


def test_the_verdict_reads_any_number_of_neural_solvers(cells):
    from harness.report import verdict

    many = pd.concat([cells, cells[cells["label"] == "metamizer"].assign(label="metamizer_cuda")])
    rows = verdict.compare(many, 1e-10)
    assert sorted(rows["label"].unique()) == ["metamizer", "metamizer_cuda", "metamizer_paper"]
    assert len(rows) == 6 and set(rows["rival"]) == {"pyamg_sa"} and set(rows["direct"]) == {"dst"}
    r = rows[(rows["label"] == "metamizer") & (rows["n"] == 64)].iloc[0]
    assert r["ratio"] == pytest.approx(r["t"] / 1.625) and r["ratio_lo"] == r["ratio_hi"] == pytest.approx(r["ratio"])
    assert verdict.sentence(rows.iloc[:0], "p", 1e-10) == "p: no neural solver in these results, so there is no " \
                                                         "verdict to give."


def test_an_overrun_is_said_in_the_table_and_times_to_target_are_unaffected(tmp_path):
    """newton_cg-like: the job's max_seconds is 10, its last (only) step ends at 13.4 s."""
    budget = {"budget": {"max_seconds": 10.0, "target_msr": None}}
    write_job(tmp_path, n=32, solver="cg", label="cg", iters=[0, 1, 2], times=[0, 6.0, 13.4], msr=[1.0, 1e-6, 1e-12],
              status="budget", message="max_seconds=10 reached; the last iteration overran it by 3.4 s", config=budget)
    write_job(tmp_path, n=32, solver="minres", label="minres", iters=[0, 1], times=[0, 9.0], msr=[1.0, 1e-12],
              status="stalled", message="returned", config={"budget": {"max_seconds": 10.0, "target_msr": 1e-28}})
    out = tmp_path / "rep"
    assert main([str(tmp_path / "synthetic"), "--out", str(out), "--no-figures"]) == 0
    md = (out / "summary.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| cg | krylov |"))
    assert "| 13.4 (3.4 s past max_seconds=10) |" in row
    t = 6.0 + (13.4 - 6.0) * (10 - 6) / (12 - 6)                     # log-linear crossing of 1e-10 in 6 .. 13.4 s
    assert f"| {t:.3g} |" in row
    minres = next(ln for ln in md.splitlines() if ln.startswith("| minres | krylov |"))
    assert "| stopped by itself, above target |" in minres and "past max_seconds" not in minres


def test_headline_and_family_figures(report):
    for kind in ("headline", "families"):
        png = report / "figures" / "all" / f"{kind}_{PROBLEM}.png"
        assert png.stat().st_size > 20_000, png
    assert (report / "figures" / "all" / "training_bill.png").stat().st_size > 10_000
    md = (report / "summary.md").read_text()
    assert md.index("headline_") < md.index("msr_time_")            # the headline comes first


def test_index_html_is_offline_and_carries_the_data(report):
    from html.parser import HTMLParser

    page = (report / "index.html").read_text()

    class Scripts(HTMLParser):
        tags: list = []

        def handle_starttag(self, tag, attrs):
            if tag in ("script", "link", "img", "iframe"):
                self.tags.append((tag, dict(attrs)))

    parser = Scripts()
    parser.feed(page)
    # nothing is fetched: no script / stylesheet / frame by URL, images inline
    assert not [t for t, a in parser.tags if t != "img" and ("src" in a or "href" in a)]
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in parser.tags if t == "img")
    # the two figures (MSR vs time and vs iterations) as plotly.js JSON, drawn once plotly.js is inflated
    import base64
    import gzip
    import json
    import re

    from plotly.offline import get_plotlyjs

    figures = [json.loads(f) for f in re.findall(
        r"<script type='application/json' class='plotly-figure' data-div='[^']+'>(.*?)</script>", page, flags=re.S)]
    assert len(figures) == 2
    bundle = re.search(r"<script id='plotly-js-gz' type='application/octet-stream'>([^<]+)</script>", page).group(1)
    assert gzip.decompress(base64.b64decode(bundle)).decode() == get_plotlyjs()   # plotly.js itself, once
    assert "DecompressionStream" in page and page.count("Plotly.newPlot(") == 1    # the loader draws each figure
    traces = figures[0]["data"]
    assert {"cg", "minres", "pyamg_sa", "adam", "dst", "metamizer", "metamizer_paper"} <= {t["name"] for t in traces}

    def values(typed):
        return np.frombuffer(base64.b64decode(typed["bdata"]), dtype=f"<{typed['dtype']}")

    cg = [t for t in traces if t["name"] == "cg"]
    assert len(cg) == 2 and [t["meta"] for t in cg] == [32, 64]                    # one trace per size
    assert min(values(cg[0]["y"])) == pytest.approx(1e-16, rel=1e-6)               # float32 for drawing
    hover = values(cg[0]["customdata"]).reshape(-1, 4)                            # iteration, time, MSR, MSE
    assert cg[0]["customdata"]["shape"] == f"{len(hover)},4" and hover[-1, 2] == 1e-16 and hover[-1, 0] == 4
    # the hover text is written once per figure (its trace template), not per trace or point
    template = figures[0]["layout"]["template"]["data"]["scatter"][0]["hovertemplate"]
    for field in ("%{fullData.name}", "%{meta}", "iteration %{customdata[0]}", "MSR %{customdata[2]", "MSE %{"):
        assert field in template, field
    assert not any(k in t for t in traces for k in ("text", "hovertext", "hovertemplate"))


def test_paper_mode_puts_the_statement_beside_the_figure(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path), "--mode", "paper_ground_truth"]) == 0
    md = (tmp_path / "summary.md").read_text()
    quote = "> \u201cWe compared the mean squared errors of Metamizer and various GPU based linear system solvers"
    assert quote in md and "(Wandel et al., ICLR 2025, App. F)" in md
    assert md.index(quote) < md.index("![laplace_bilinear: MSE to ground truth vs solve time]")
    page = (tmp_path / "index.html").read_text()
    assert page.count("<blockquote class='claim'>") == 2             # beside each of its two figures
    assert all(g.statement("msr_time") for g in groups.PAPER)


# --------------------------------------------------------------------------- a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def test_page_in_a_headless_browser_hides_a_solver_on_legend_click(report, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium / chromedriver not found (Debian: apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        driver.get((report / "index.html").resolve().as_uri())
        plot = f"plot-all-{PROBLEM}-time"
        count = (f"return document.getElementById('{plot}').querySelectorAll('.scatterlayer .trace')"
                 ".length")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.execute_script(count) > 0)
        before = driver.execute_script(count)
        traces = driver.execute_script(f"return document.getElementById('{plot}').data.length")
        assert before == traces                                      # every trace drawn
        per_size = driver.execute_script(
            f"return document.getElementById('{plot}').data.filter(t => t.name === 'cg').length")
        assert per_size == 2                                         # cg at n = 32 and 64
        entry = next(e for e in driver.find_elements(By.CSS_SELECTOR, f"#{plot} .legend .traces")
                     if e.text == "cg")
        entry.find_element(By.CSS_SELECTOR, ".legendtoggle").click()
        wait.until(lambda d: d.execute_script(count) == before - per_size)
        hidden = driver.execute_script(f"return document.getElementById('{plot}').data"
                                       ".filter(t => t.visible === 'legendonly').map(t => t.name)")
        assert hidden == ["cg", "cg"]
        entry.find_element(By.CSS_SELECTOR, ".legendtoggle").click()   # and back
        wait.until(lambda d: d.execute_script(count) == before)
    finally:
        driver.quit()


def test_solver_info_is_read_from_either_metadata_place(tmp_path):
    """Inside the harness metadata JSON, or as its own schema-metadata key ``solver_info``."""
    import json

    import pyarrow.parquet as pq

    kw = {"sweep": "info", "iters": [0, 1], "times": [0, 1], "msr": [1.0, 1e-12], "status": "budget"}
    write_job(tmp_path, n=32, solver="metamizer", label="metamizer", info=TRAIN, **kw)
    own = write_job(tmp_path, n=64, solver="metamizer", label="metamizer", **kw)
    table = pq.read_table(own)
    meta = dict(table.schema.metadata)
    meta[b"solver_info"] = json.dumps({"training_wall_s": 7.5}).encode()
    pq.write_table(table.replace_schema_metadata(meta), own)
    infos = costs.solver_info(tmp_path)
    assert {v["training_wall_s"] for v in infos.values()} == {3600.0, 7.5}


def test_headline_legend_says_at_which_sizes_a_solver_misses_the_target():
    """One legend serves every panel: 'not reaching' alone would claim a solver never reaches the target."""
    from harness.report.panels import _headline_names

    picks = pd.DataFrame({
        "label": ["metamizer_paper"] * 3 + ["adam"] * 2 + ["dst"],
        "n": [32, 64, 512, 32, 64, 32], "role": ["neural"] * 3 + ["best"] * 2 + ["limit"],
        "family": ["neural"] * 3 + ["first_order"] * 2 + ["direct"],
        "reached": [False, True, False, False, False, True]})
    names = _headline_names(picks, 1e-10)
    assert names["metamizer_paper"] == "metamizer_paper (neural, not reaching 1e-10 at n = 32, 512)"
    assert names["adam"] == "adam (best first-order, not reaching 1e-10)"  # at none of its sizes
    assert names["dst"] == "dst (direct solver: the limit)"
