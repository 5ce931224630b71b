"""report/render.py: the HTML and Markdown reports from tables (fake runs -> analyse -> render)."""

import html
import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from conftest import REPO
from run_helpers import markdown_tables, write_diverged_run, write_run, write_stats

from elcrec import ElcrecError
from elcrec.report import claims, render, tables
from elcrec.stats import load_paper

PAPER_SECTIONS = [f"table{n}" for n in range(1, 13)] + [f"figure{n}" for n in range(1, 7)]
PAPER_SECTIONS += ["summary", "significance", "paper-vs-code", "missing", "provenance", "paper-source", "scale"]
PAPER_SECTIONS += ["departures"]


class ReportParser(HTMLParser):
    """Collects ids, links, images, per number cell whether it holds a link, and per table the
    class of the element it sits in."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.images, self.number_cells = set(), [], [], []
        self.table_parents, self._open = [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table_parents.append(self._open[-1] if self._open else ("", ""))
        if tag not in ("br", "img", "meta", "link", "hr", "input"):
            self._open.append((tag, attrs.get("class") or ""))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.links.append(attrs.get("href", ""))
            if self._cell is not None:
                self._cell["linked"] = True
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "td" and "num" in attrs.get("class", "").split():
            self._cell = {"linked": False, "text": ""}
            self.number_cells.append(self._cell)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        while self._open:  # close up to the matching tag (tolerates the implicitly closed ones)
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for seed, (elcrec, iclrec) in enumerate([(0.50, 0.30), (0.46, 0.34)], start=1):
        for dataset in ("beauty", "ml-1m"):
            write_run(root / "runs", dataset, "elcrec", "ELCRec", seed, elcrec)
            write_run(root / "runs", dataset, "iclrec", "default", seed, iclrec)
        write_run(root / "runs", "beauty", "elcrec", "B", seed, 0.2)
    write_run(root / "runs", "beauty", "elcrec", "alpha-0.1", 1, 0.4, settings={"alpha": 0.1})
    write_run(root / "runs", "beauty", "iclrec", "tuned", 1, 0.41)  # a named departure, Table 1 column present
    write_run(root / "runs", "beauty", "bprmf", "lr1e-3", 1, 0.15)  # its Table 1 column has no run
    write_run(root / "runs", "beauty", "pop", "default", 1, 0.05)
    for seed, (sasrec_ce, elcrec_ce) in enumerate([(0.40, 0.55), (0.42, 0.57)], start=1):  # beyond the paper
        write_run(root / "runs", "beauty", "sasrec", "ce", seed, sasrec_ce)
        write_run(root / "runs", "beauty", "elcrec", "ce", seed, elcrec_ce)
    write_diverged_run(root / "runs", "yelp", "sasrec", "default", 1)  # the paper's "-": shown, never a blank
    write_stats(root / "sequences")  # fixture-sized Beauty, ML-1M and MIND-small
    checked = {  # what rule official_check writes (official.check_s3rec)
        "model": "s3rec",
        "official_code": "github.com/aHuiWang/CIKM2020-S3Rec @ 49a890dcb516c9ed3126564495234ea74d5cd566",
        "compared": "AAP, MIP, MAP, SP, the total; every gradient",
        "departures": "none switched off",
        "status": "equal within float32 rounding",
        "largest_loss_share": 6.1e-6,
        "largest_gradient": {
            "parameter": "backbone.blocks.0.feed_forward.expand.bias",
            "difference": 1.9e-5,
            "largest": 3.6,
        },
    }
    (root / "official" / "beauty").mkdir(parents=True)
    (root / "official" / "beauty" / "s3rec.json").write_text(json.dumps(checked))
    released = {"HR@5": 0.0529, "NDCG@5": 0.0355, "HR@20": 0.1079, "NDCG@20": 0.0509}  # Beauty: the paper's row
    (root / "reference" / "beauty").mkdir(parents=True)
    (root / "reference" / "beauty" / "metrics.json").write_text(json.dumps({"metrics": released}))
    (root / "reference" / "toys").mkdir(parents=True)
    (root / "reference" / "toys" / "metrics.json").write_text(json.dumps({"metrics": released}))  # not Toys' row
    paper = load_paper(REPO / "config" / "paper.yaml")
    registered = {"sasrec", "cl4srec", "iclrec", "elcrec", "pop"}
    built = tables.build(
        root / "runs",
        root / "sequences",
        paper,
        [1, 2],
        registered,
        paper_claims=claims.load(REPO / "config" / "claims.yaml"),
        beyond_claims=claims.load(REPO / "config" / "claims.yaml", "beyond"),
    )
    tables.write(built, root / "tables")
    scale_rows = ["method,users,seconds,encode_seconds,kmeans_seconds,epoch_seconds,peak_memory_mb,device"]
    for users in (1000, 10000):
        scale_rows.append(f"elcrec_step,{users},0.002,,,{0.002 * users / 256},0.5,cpu: test")
        scale_rows.append(
            f"iclrec_estep,{users},{users / 1000},{users / 2000},{users / 2000},{users / 1000},{users / 100},cpu: test"
        )
    (root / "tables" / "scale.csv").write_text("\n".join(scale_rows) + "\n")
    written = render.render(root / "tables", root / "report")
    html = written["report.html"].read_text(encoding="utf-8")
    parser = ReportParser()
    parser.feed(html)
    return {"html": html, "markdown": written["report.md"].read_text(encoding="utf-8"), "parser": parser, "root": root}


def test_every_paper_table_and_figure_has_a_section(report):
    missing = [section for section in PAPER_SECTIONS if section not in report["parser"].ids]
    assert not missing


def test_every_number_cell_links_to_its_provenance_and_every_link_resolves(report):
    parser = report["parser"]
    assert len(parser.number_cells) > 300
    unlinked = [cell["text"] for cell in parser.number_cells if not cell["linked"]]
    assert not unlinked
    internal = {link[1:] for link in parser.links if link.startswith("#")}
    assert internal - parser.ids == set()
    assert "prov-beauty--elcrec--ELCRec" in parser.ids and "prov-ml-1m--iclrec--default" in parser.ids
    assert all(link.startswith("#") for link in parser.links)  # self-contained: no external references


def test_nothing_is_left_unrendered_and_images_are_embedded(report):
    for text in (report["html"], report["markdown"]):
        assert "{{" not in text and "{%" not in text and "{#" not in text
    assert report["parser"].images and all(src.startswith("data:image/png;base64,") for src in report["parser"].images)
    for name in ("figure1_ablation", "figure2_sensitivity", "figure3_convergence", "figure6_tsne", "scale_study"):
        assert (report["root"] / "report" / "figures" / f"{name}.png").exists()
    assert len(report["parser"].images) == 5


def test_numbers_and_flags_in_the_report(report):
    html, markdown = report["html"], report["markdown"]
    assert "0.4800" in html and "0.0529" in html  # ours (mean of 0.50, 0.46) beside the paper's
    assert 'ELCRec</td><td class="label">ICLRec' in html.replace("\n", "")  # best vs runner-up on beauty
    assert "Pending, not implemented yet" in html and "bprmf" in html
    assert "results/runs/beauty/sasrec/default/seed1/metrics.json" in html  # how to make a missing run
    assert "n/a" in html  # single-seed or absent comparisons are never given a number
    assert "| beauty | HR@5 | ELCRec | ICLRec |" in markdown
    # the scale study: one row per (method, users), its source named
    assert "| iclrec_estep | 10000 | 10.0000 | 5.00 | 5.00 | 10.00 | 100.0 |" in markdown
    # a named departure beside its Table 1 column (ours official, then the paper's) in both formats
    # and the paired test of the two (none without an official run)
    tuned = r"\| beauty \| iclrec \| tuned \(vs default\) \| 0.4100 / 0.3200 / 0.0495 \(p \d\.\d\de-\d\d, Holm "
    assert re.search(tuned, markdown)
    assert "| beauty | bprmf | lr1e-3 (vs default) | 0.1500 / – / 0.0212 (p n/a, Holm n/a) |" in markdown
    assert "<th>Wilcoxon p (Holm p)</th>" in section(html, "departures")
    assert 'href="#prov-beauty--iclrec--tuned"' in html
    assert "measured on cpu: test" in html and "![scale study](figures/scale_study.png)" in markdown


def test_render_needs_the_analysis_tables(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "runs.csv").write_text("dataset\n")
    with pytest.raises(ElcrecError, match="elcrec analyse"):
        render.render(tmp_path / "tables", tmp_path / "report")
    assert not (tmp_path / "report" / "report.html").exists()


def test_number_formatting_never_invents_values():
    assert render.number(None) == "–" and render.number(float("nan")) == "–"
    assert render.number(0.12345) == "0.1235" and render.number(3.0, 0) == "3"
    assert render.pvalue(None) == "n/a" and render.pvalue(0.000123) == "1.23e-04"
    assert render.percent(12.345) == "+12.35%" and render.percent(float("nan")) == "–"


def test_table1_shows_the_released_checkpoints_and_how_the_paper_row_relates(report):
    page, markdown = html.unescape(report["html"]), report["markdown"]
    assert page.count('<td class="label">ELCRec, released checkpoint</td>') == 2
    assert markdown.count("| ELCRec, released checkpoint |") == 2
    beauty = page.split('id="table1-beauty-released"')[1].split("</p>")[0]
    assert "equals this released checkpoint's test metrics on all four metrics" in beauty
    toys = page.split('id="table1-toys-released"')[1].split("</p>")[0]
    assert "differs from the released checkpoint in HR@5 (paper 0.0585, released 0.0529)" in toys
    sports = page.split('id="table1-sports-released"')[1].split("</p>")[0]
    assert "No released checkpoint was evaluated" in sports


def test_the_claims_section_lists_every_claim_with_a_verdict(report):
    listed = claims.load(REPO / "config" / "claims.yaml")
    section = report["html"].split('id="claims"')[1].split("<h2")[0]
    assert section.count('<tr id="claim-') == len(listed)
    assert "&gt;=" in section and ">=" not in section.replace("&gt;=", "")  # the HTML template escapes text
    assert "not yet testable" in section and "## The paper's claims" in report["markdown"]


def test_claim_numbers_carry_their_unit_in_both_columns_and_formats(report):
    assert render.amount(8.9, "%") == "8.90 %" and render.amount(0.9375, "of the cells") == "0.94 of the cells"
    assert render.amount(None, "%") == "–" and render.amount(float("nan"), "%") == "–"
    assert str(render.amount(1.0, "of <x>", html=True)) == "1.00&nbsp;of &lt;x&gt;"
    page, markdown = report["html"], report["markdown"]
    assert '<td class="value">8.90&nbsp;%</td>' in page and "| 8.90 % |" in markdown  # the abstract's NDCG@5 gain
    assert '<td class="value">0.94&nbsp;of the cells</td>' in page and "| 0.94 of the cells |" in markdown
    table = tables.read(report["root"] / "tables")["claims"]
    assert table["value"].notna().any()  # some of ours too
    for claim in table.to_dict("records"):
        row = page.split(f'<tr id="claim-{claim["id"]}">')[1].split("</tr>")[0]
        cells = re.findall(r'<td class="value">(.*?)</td>', row)
        for value, cell in zip((claim["paper_value"], claim["value"]), cells, strict=True):
            if pd.notna(value):  # the paper's number and ours, each with the claim's unit from claims.yaml
                assert cell == f"{value:.2f}&nbsp;{html.escape(claim['unit'], quote=False)}", claim["id"]
                assert f"| {value:.2f} {claim['unit']} |" in markdown, claim["id"]


def test_the_summary_says_which_runs_have_no_results_and_why(report, tmp_path):
    built = tables.read(report["root"] / "tables")
    absent = built["missing"][built["missing"]["status"] == "missing"]
    unrun = sorted(set(absent["dataset"]) - set(built["runs"]["dataset"]))
    assert unrun == ["mind-small", "sports", "toys"]  # yelp has its diverged run
    summary = html.unescape(section(report["html"], "summary"))
    assert f"{len(absent)} runs that the report's tables need have no results yet" in summary
    assert f"{int(absent['dataset'].isin(unrun).sum())} of them on datasets with no run here at all" in summary
    assert "(mind-small, sports, toys)" in summary and "runs missing" not in report["markdown"]
    # tables re-made from the runs found (no grid named): a run without results is unfinished or outside the grid
    assert "re-made from\nthe runs found" in summary and "runs without results" in report["markdown"]
    assert 'href="#grid"' in section(report["html"], "missing")
    # the analysis of a config's finished grid (rule analyse names its files): outside that grid, none failed;
    # a smoke run left in results/runs is named as left out
    copied = tmp_path / "tables"
    copied.mkdir()
    for path in (report["root"] / "tables").glob("*.csv"):
        (copied / path.name).write_bytes(path.read_bytes())
    pd.DataFrame([{"grid_configs": "config/config.yaml + config/smoke.yaml"}]).to_csv(
        copied / "analysis.csv", index=False
    )
    run = {"dataset": "beauty", "model": "sasrec", "variant": "default", "seed": 1}
    run |= {"run_dir": "results/runs/beauty/sasrec/default/seed1", "reason": "trained on another sequence file"}
    pd.DataFrame([run]).to_csv(copied / "foreign.csv", index=False)
    written = render.render(copied, tmp_path / "report")
    page, markdown = html.unescape(written["report.html"].read_text()), written["report.md"].read_text()
    for text in (page, " ".join(markdown.split())):
        assert "every run of the grid of" in text and "config/config.yaml + config/smoke.yaml" in text
        assert "outside that grid" in " ".join(text.split()) and "re-made from" not in text
    assert "Left out of every number: 1 run(s) under <code>results/runs/</code> trained on other data" in page
    assert "Left out of every number: 1 run(s) under `results/runs/` trained on other data" in markdown


def section(html: str, name: str) -> str:
    """The HTML from <h2 id=name> to the next <h2>."""
    start = html.index(f'<h2 id="{name}">')
    end = html.find("<h2 ", start + 1)
    return html[start : end if end > 0 else len(html)]


def test_paper_vs_code_names_the_setting_and_variant_of_every_difference(report):
    differences = section(report["html"], "paper-vs-code")
    for named in ("masking: zero", "centre_init: kmeans", "cluster_loss: code", "kmeans_start: continue"):
        assert f"<code>{named}</code>" in differences
    for variant in ("random-init", "paper-loss", "fresh-kmeans"):
        assert f"<code>{variant}</code>" in differences
    assert "`kmeans_start: continue`" in report["markdown"] and "`fresh-kmeans`" in report["markdown"]


def test_every_table_scrolls_in_its_own_box_and_headers_wrap(report):
    parents = report["parser"].table_parents
    assert len(parents) > 20 and all(parent == ("div", "scroll") for parent in parents)
    css = (REPO / "reports" / "templates" / "style.css").read_text()
    assert re.search(r"\.scroll \{[^}]*overflow-x: auto", css)
    assert re.search(r"(^|\n)th \{[^}]*white-space: normal", css)  # titles wrap; numbers (td) do not
    # one row per (departure, metric), not 16 number columns side by side
    departures = section(report["html"], "departures")
    assert departures.count("<th") == 8 and departures.count('rowspan="4"') == 3 * 2


def test_table_7_links_to_the_ml_1m_data_it_shows(report):
    table7 = section(report["html"], "table7")
    assert table7.count('href="#data-ml-1m"') == 5 and 'id="data-ml-1m"' in table7
    assert "abababababababab…" in table7  # the sequence file's sha256, as Table 6 shows its datasets'


def test_the_other_data_banner_names_every_dataset_that_differs(report):
    summary = html.unescape(section(report["html"], "summary"))
    assert "Not the paper's data" in summary
    for dataset, section_id in (("beauty", "table6"), ("ml-1m", "table7"), ("mind-small", "table9")):
        assert f'<a href="#{section_id}">{dataset}</a>' in summary
    assert "raw users (Table 7): 10 here, 6040 in the paper" in summary
    assert "(raw users (the paper's MIND-small samples 50,000): 70 here, >= 50000 in the paper) differ" in summary
    assert "ml-1m (raw users (Table 7): 10 here, 6040 in the paper)" in report["markdown"]


def test_the_significance_table_names_both_pairs_and_explains_its_marks(report):
    significance = report["html"][report["html"].index('<h3 id="significance">') : report["html"].index('id="table2"')]
    assert "ELCRec vs</th>" in significance and "<code>*</code> after the" in significance
    assert "Wilcoxon p (Holm p)" in significance and "after Holm's correction" in significance
    rows = significance.replace("\n", "").split("<tr>")
    beauty = next(row for row in rows if row.startswith('<td class="label">beauty</td><td class="label">HR@5'))
    assert 'ELCRec</td><td class="label">ICLRec</td>' in beauty  # ours
    assert '<td class="label paper">ICLRec</td>' in beauty and "6.87% up" in beauty  # the paper's pair
    sports = next(row for row in rows if row.startswith('<td class="label">sports</td><td class="label">NDCG@20'))
    assert '<td class="label paper">IOCRec</td>' in sports  # not Caser's typo 0.178
    missing_row = "| sports | NDCG@20 | _fewer than two reproduced columns_ | | – | n/a | n/a | n/a | n/a | IOCRec |"
    assert missing_row in report["markdown"]
    assert "`*` after the paper's p" in report["markdown"]


def test_pop_is_in_table_1_as_a_column_of_ours(report):
    beauty = section(report["html"], "table1")
    beauty = beauty[beauty.index('id="table1-beauty"') : beauty.index('id="table1-toys"')]
    assert '<td class="label">Pop</td><td class="label">ours</td>' in beauty.replace("\n", "")
    assert beauty.count("not in paper") == 4 and 'href="#prov-beauty--pop--default"' in beauty
    assert "| Pop | ours | not in paper / 0.0500 ± – |" in report["markdown"]


def test_run_directories_wrap_only_after_a_slash():
    assert str(render.breakable_path("results/runs/a<b/seed1")) == "results/<wbr>runs/<wbr>a&lt;b/<wbr>seed1"


def test_a_diverged_run_is_shown_with_where_it_diverged(report):
    page = html.unescape(report["html"])
    section = page.split('id="diverged"')[1].split("<h2")[0]
    assert "yelp / sasrec / default / seed 1" in section and "non-finite loss at epoch 4, step 7" in section
    assert "after 4 epochs: sasrec: non-finite loss at epoch 4, step 7" in report["markdown"]
    yelp = page.split('id="table1-yelp"')[1].split("</table>")[0]
    assert "diverged" in yelp


def test_every_markdown_table_has_as_many_cells_in_every_row(report):
    tables_found = markdown_tables(report["markdown"])
    assert len(tables_found) >= 10
    for rows in tables_found:
        counts = {len(row.strip().strip("|").split("|")) for row in rows}
        assert len(counts) == 1, rows[:2]
    assert "built-in method" not in report["markdown"]  # Table 6's item counts, not dict.items


def test_two_renders_of_the_same_tables_are_byte_identical(report, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = render.render(report["root"] / "tables", tmp_path / "one")
    second = render.render(report["root"] / "tables", tmp_path / "two")
    for name in ("report.html", "report.md"):
        assert first[name].read_bytes() == second[name].read_bytes(), name
    assert "2023-11-14 22:13 UTC" in first["report.md"].read_text(encoding="utf-8")


def test_the_cross_entropy_section_says_it_is_not_the_paper_and_gives_both_verdicts(report):
    html = section(report["html"], "cross-entropy")
    assert "These are not the paper's experiments" in html and 'href="#cross-entropy"' in report["html"]
    assert "ELCRec (as published) beats SASRec trained with cross-entropy" in html
    assert "still adds to a cross-entropy-trained encoder" in html
    assert 'href="#prov-beauty--sasrec--ce"' in html and 'href="#prov-beauty--elcrec--ce"' in html
    assert html.count("not yet testable") == 2  # runs of the other three benchmarks are missing
    assert "Not the paper's data" in html  # the fixture-sized Beauty differs from the paper's
    markdown = report["markdown"]
    assert "## Beyond the paper: baselines trained with cross-entropy" in markdown
    assert "| beauty | HR@5 | ELCRec-CE vs SASRec-CE | +" in markdown


def test_the_official_code_section_lists_every_model_and_the_checked_one_s_differences(report):
    html = section(report["html"], "official")
    assert html.count("<tr>") == 1 + 13  # the header and the thirteen Table 1 models
    assert "equal within float32 rounding" in html and "0.00000610" in html
    assert "backbone.blocks.0.feed_forward.expand.bias" in html and "aHuiWang/<wbr>CIKM2020-S3Rec" in html
    assert html.count("not run here") == 12  # the records here: S3-Rec's only; the others have checks not run
    assert "not checked yet" not in html  # every Table 1 model has a check of its official code
    assert "## Checked against the official code" in report["markdown"]
