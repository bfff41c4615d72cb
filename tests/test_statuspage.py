"""The status page in a real browser (Debian's chromium through its chromedriver): every section from a live
document with hand edits, a conflict and a failed server; with JavaScript off too; values people typed shown as
text, never run; nothing loaded from anywhere. Screenshots are kept in .artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest
from support.badhttp import config_of, serving
from support.browser import browser as open_browser
from support.commands import cli, run_sync
from support.kv import hand_edit

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"
XSS = '<img src=x onerror="window.__xss=1"></script><script>window.__xss=2</script>'
FIELDS = 30


@pytest.fixture(scope="module")
def page(consul, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`fieldsync status --format html` of a live document holding 2 hand edits, 1 conflict, 1 failed server and
    30 fields, one hand edit a display name that is markup."""
    from support.gitrepo import shipped_fields_repo

    work = tmp_path_factory.mktemp("statuspage")
    repo = shipped_fields_repo(work / "repo")
    rules = "".join(f"  - {{source_labels: [__meta_consul_service_metadata_{n}], target_label: {n}}}\n"
                    for n in ("company", "env", "site", "rack", "extracted_only"))
    key = "page/fields"
    with ExitStack() as stack:
        up = stack.enter_context(serving(config_of(f"scrape_configs:\n- job_name: a\n  relabel_configs:\n{rules}")))[0]
        down_server = ExitStack()
        down = down_server.enter_context(serving(config_of("scrape_configs: []\n")))[0]
        for n in range(FIELDS - len(list((repo.path / "fields").iterdir()))):
            repo.write(f"fields/extra_{n:02d}.yaml", f"name: extra_{n:02d}\norder: {100 + n}\n")
        repo.write("fieldsync.yaml", f"key: {key}\nprometheus:\n  - {{name: up, url: '{up}', hostname: prom-up}}\n"
                                     f"  - {{name: down, url: '{down}', hostname: prom-down}}\n")
        repo.commit("thirty fields, two servers")
        assert run_sync(consul, repo.path, key=key)[0] == 0
        hand_edit(consul, key, "env", display_name=XSS)
        hand_edit(consul, key, "site", description="typed in the old UI")
        hand_edit(consul, key, "company", display_name="Empresa (UI)")
        assert run_sync(consul, repo.path, key=key)[0] == 0
        repo.write("fields/company.yaml", (repo.path / "fields/company.yaml").read_text().replace(
            "display_name: Company", "display_name: Company (git)"))
        repo.commit("company renamed in git too")
        down_server.close()  # that server is gone
        code, output = run_sync(consul, repo.path, key=key)
        assert code == 0 and "1 failed" in output, output
        code, html = cli(consul, "status", "--repo", str(repo.path), "--format", "html")
        assert code == 6, html  # conflicts
        code, status = cli(consul, "status", "--repo", str(repo.path), "--format", "json")
    path = work / "status.html"
    path.write_text(html)
    (work / "status.json").write_text(status)
    yield path


def _sections(browser) -> dict[str, object]:  # noqa: ANN001 - a selenium WebDriver
    from selenium.webdriver.common.by import By

    def rows(css: str) -> list[str]:
        return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]

    return {"conflicts": rows("#conflicts tr.conflict"), "hand_edits": rows("#hand-edits tr.hand-edit"),
            "servers_failed": rows("#servers tr.server.failed"), "servers_ok": rows("#servers tr.server.ok"),
            "fields": rows("#fields-table tr.field"), "runs": rows("#runs tr.run"),
            "standing": browser.find_element(By.ID, "standing").text}


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_every_section_shows_what_is_live(page: Path, javascript: bool) -> None:
    browser = open_browser(javascript)
    try:
        browser.get(page.as_uri())
        found = _sections(browser)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"status-page-{'js' if javascript else 'nojs'}.png"))
        xss = browser.execute_script("return window.__xss === undefined ? null : window.__xss") if javascript else None
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })") if javascript \
            else []
    finally:
        browser.quit()
    assert len(found["conflicts"]) == 1 and "company" in found["conflicts"][0], found
    assert "Empresa (UI)" in found["conflicts"][0] and "Company (git)" in found["conflicts"][0]
    assert len(found["hand_edits"]) == 2, found
    assert any(json.dumps(XSS) in row for row in found["hand_edits"]), found  # shown as the text it is (JSON)
    assert len(found["servers_failed"]) == 1 and "prom-down" in found["servers_failed"][0], found
    assert len(found["servers_ok"]) == 1 and "prom-up" in found["servers_ok"][0]
    assert len(found["fields"]) == FIELDS + 1, found["fields"]  # 30 files and one field only Prometheus has
    assert any("extracted_only" in f and "extracted only" in f for f in found["fields"])
    assert len(found["runs"]) == 3 and all(" command " in run for run in found["runs"]), found["runs"]
    assert found["standing"].startswith("Conflicts")
    assert xss is None and resources == []  # nothing injected ran; nothing was loaded


def test_the_page_allows_nothing_from_outside_and_filters_with_javascript(page: Path) -> None:
    from selenium.webdriver.common.by import By

    html = page.read_text()
    policy = unescape(html.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0])
    assert policy.startswith("default-src 'none';") and "connect-src 'none'" in policy and "http" not in policy
    assert "<script>window.__xss" not in html and "&lt;script&gt;window.__xss=2" in html
    browser = open_browser()
    try:
        browser.get(page.as_uri())
        box = browser.find_element(By.ID, "filter")
        box.send_keys("extra_0")
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#fields-table tr.field")
                 if e.is_displayed()]
    finally:
        browser.quit()
    assert shown and all("extra_0" in row for row in shown) and len(shown) < FIELDS, shown


def test_the_page_is_built_from_what_status_json_says(page: Path) -> None:
    status = json.loads((page.parent / "status.json").read_text())
    html = page.read_text()
    assert html.count('<tr class="conflict">') == len(status["conflicts"]) == 1
    assert html.count('<tr class="hand-edit">') == len(status["hand_edits_kept"]) == 2
    assert html.count('<tr class="field"') == len(status["fields"]) == FIELDS + 1
    assert html.count('<tr class="server ') == len(status["servers"]) == 2
    assert html.count('<tr class="run ') == len(status["runs"]) == 3
    assert status["document"]["bytes"] > 0 and "url" not in json.dumps(status["servers"])


def test_the_service_page_shows_a_hand_edit_without_reloading(consul, field_repo, example_prometheus) -> None:
    """GET / on `fieldsync serve`: a hand edit made in KV appears on the open page (the page is not reloaded: a
    mark left on it stays); the answer carries the page's CSP; the browser fetched nothing from another origin.
    How soon it appears is measured by bench/statuspage_bench.py."""
    import time
    import urllib.request

    from selenium.webdriver.common.by import By
    from support.serving import serve_repo

    key = "livepage/fields"
    served = serve_repo(consul, field_repo.path, example_prometheus.url, key)
    try:
        served.wait_ready()
        served.wait_for(lambda e: e["event"] == "sync" and e["outcome"] in ("written", "unchanged"))
        deadline = time.monotonic() + 30
        while served.get("/")[0] != 200:
            assert time.monotonic() < deadline, served.get("/")
            time.sleep(0.2)
        with urllib.request.urlopen(served.url + "/") as answer:
            policy = answer.headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'none';") and "connect-src 'self'" in policy, policy
        browser = open_browser()
        try:
            browser.get(served.url + "/")
            browser.execute_script("window.__mark = 'kept'")
            assert not browser.find_elements(By.CSS_SELECTOR, "#hand-edits tr.hand-edit")
            assert browser.find_element(By.ID, "role").text == "leader"
            assert browser.find_element(By.ID, "next-run").text.startswith("20")  # an instant, UTC
            hand_edit(consul, key, "team", display_name="Equipe (UI)")
            edited = time.monotonic()
            while not browser.find_elements(By.CSS_SELECTOR, "#hand-edits tr.hand-edit"):  # how soon: the bench
                assert time.monotonic() - edited < 30, "the hand edit never appeared on the open page"
                time.sleep(0.05)
            row = browser.find_element(By.CSS_SELECTOR, "#hand-edits tr.hand-edit").text
            mark = browser.execute_script("return window.__mark")
            origins = browser.execute_script(
                "return performance.getEntriesByType('resource').map(function (e) { return new URL(e.name).origin; })")
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "status-page-live.png"))
        finally:
            browser.quit()
    finally:
        served.stop()
    assert "team" in row and "Equipe (UI)" in row and mark == "kept", (row, mark)
    assert set(origins) <= {served.url}, origins


def test_the_page_names_what_the_last_run_repaired_of_an_old_backend_job() -> None:
    from fieldsync import render
    from fieldsync.model import Lineage, Position, StatusReport

    last = {"at": "2026-12-04T03:00:00+00:00", "outcome": "written", "duration_ms": 40, "error": None,
            "job_rewrites": {"job": "prewarm", "source": "prewarm_update_with_merge",
                             "attributes": [{"field": "env", "attribute": "field_type", "live": "select"},
                                            {"field": "os", "attribute": "options", "live": []}]}}
    report = StatusReport("k", True, "main", "a" * 40, Position(Lineage.SAME, "a" * 40, "a" * 40), None, None, last,
                          overview={"servers": [], "fields": [], "runs": [],
                                    "document": {"bytes": 1, "limit": 524288, "share": 0.0, "fields": 0,
                                                 "servers": 0}})
    html = render.status_page(report)
    repaired = html.split('<p id="repaired">', 1)[1].split("</p>", 1)[0]
    assert "prewarm job" in repaired and "prewarm_update_with_merge" in repaired
    assert "env.field_type, os.options" in " ".join(repaired.split())
    assert 'id="repaired"' not in render.status_page(replace(report, last_run={**last, "job_rewrites": None}))


def test_a_standby_serves_the_page_too(consul, field_repo, example_prometheus) -> None:
    """Behind a load balancer any replica answers GET /: a standby shows the state as it read it (it syncs nothing)."""
    import time

    from support.serving import serve_repo

    key = "standbypage/fields"
    replicas = [serve_repo(consul, field_repo.path, example_prometheus.url, key) for _ in range(2)]
    try:
        roles = {replica.wait_ready(): replica for replica in replicas}
        assert set(roles) == {"leader", "standby"}, roles
        standby = roles["standby"]
        deadline = time.monotonic() + 30
        while (answer := standby.get("/"))[0] != 200:
            assert time.monotonic() < deadline, (answer, standby.log)
            time.sleep(0.2)
        assert 'id="role">standby<' in answer[1] and f'<span class="key">{key}</span>' in answer[1]
    finally:
        for replica in replicas:
            replica.stop()
