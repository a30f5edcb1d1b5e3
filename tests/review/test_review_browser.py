"""End to end in real headless Chromium: keyboard review, reload and resume, and no script runs.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``: /usr/bin/chromium, /usr/bin/chromedriver) and selenium; skipped otherwise.
Set ``ROLLCRAFT_SCREENSHOT=DIR`` to also save a screenshot of a real rollout there.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = os.environ.get("ROLLCRAFT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ROLLCRAFT_CHROMEDRIVER", "/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver",
)

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> [click](javascript:alert(1))'


def _record(i: int, answer: str) -> bytes:
    return orjson.dumps(
        {
            "responses_create_params": {"input": [{"role": "user", "content": f"question {i}"}]},
            "response": {
                "output": [
                    {"type": "function_call", "call_id": f"c{i}", "name": "lookup", "arguments": '{"q": 1}'},
                    {"type": "function_call_output", "call_id": f"c{i}", "output": XSS},
                    {"type": "message", "role": "assistant", "content": answer},
                ]
            },
            "reward": i / 4,
            "task_id": f"t{i}",
        }
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="rollcraft-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class _Server:
    def __init__(self, sample: Path, decisions: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "rollcraft.cli",
            "review",
            str(sample),
            "--decisions",
            str(decisions),
        ]
        env = {**os.environ, "COLUMNS": "400"}
        self.process = subprocess.Popen(
            [*command, "--no-browser", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Open http://127.0.0.1:"):
                return line.split()[1]
        raise AssertionError("the review server printed no URL")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


Start = Callable[[list[bytes]], tuple[_Server, Path]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Start]:
    servers: list[_Server] = []

    def start(lines: list[bytes]) -> tuple[_Server, Path]:
        sample = tmp_path / "sample.jsonl"
        sample.write_bytes(b"\n".join(lines) + b"\n")
        decisions = tmp_path / "decisions.jsonl"
        servers.append(_Server(sample, decisions))
        return servers[-1], decisions

    yield start
    for server in servers:
        server.stop()


def _ready(driver: webdriver.Chrome, text: str) -> None:
    WebDriverWait(driver, 10).until(
        lambda d: (
            d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
            and text in d.find_element(By.ID, "conversation").text
        )
    )


def _press(driver: webdriver.Chrome, key: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_keyboard_review_survives_a_reload(browser: webdriver.Chrome, serve: Start) -> None:
    server, decisions = serve([_record(i, f"answer {i}") for i in range(5)])
    browser.get(server.url)
    _ready(browser, "question 0")
    for i, key in enumerate("ars"):
        _ready(browser, f"question {i}")
        if i == 1:
            browser.find_element(By.ID, "note").click()
            browser.find_element(By.ID, "note").send_keys("wrong tool")
            browser.find_element(By.ID, "note").send_keys("\ue00c")  # Escape leaves the note
        _press(browser, key)
        WebDriverWait(browser, 10).until(lambda d, n=i + 1: len(_lines(decisions)) == n)
    browser.refresh()
    _ready(browser, "question 3")
    assert "3 of 5 reviewed" in browser.find_element(By.ID, "progress").text
    saved = _lines(decisions)
    assert [d["decision"] for d in saved] == ["accept", "reject", "skip"]
    assert [d["note"] for d in saved] == ["", "wrong tool", ""]
    assert browser.execute_script("return window.__pwned") is None


def test_hostile_content_renders_as_text_and_runs_nothing(browser: webdriver.Chrome, serve: Start) -> None:
    server, _ = serve([_record(0, XSS)])
    browser.get(server.url)
    _ready(browser, "question 0")
    for fold in browser.find_elements(By.CSS_SELECTOR, "details"):
        browser.execute_script("arguments[0].open = true", fold)
    time.sleep(0.5)  # give an injected image's onerror the chance to fire
    assert browser.execute_script("return window.__pwned") is None
    conversation = browser.find_element(By.ID, "conversation")
    assert conversation.text.count("<script>window.__pwned=1</script>") == 2
    assert conversation.find_elements(By.TAG_NAME, "img") == []
    assert conversation.find_elements(By.TAG_NAME, "script") == []
    assert conversation.find_elements(By.TAG_NAME, "a") == []


def test_without_the_token_the_page_is_refused(browser: webdriver.Chrome, serve: Start) -> None:
    server, _ = serve([_record(0, "fine")])
    browser.get(server.url.split("?")[0])
    assert "403" in browser.find_element(By.TAG_NAME, "body").text


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[str]:
    """A page on another origin (another port): what a malicious site open in the same browser is."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>elsewhere</title><p>another site</p>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


CROSS_SITE_POST = """
const [url, body, done] = arguments;
fetch(url, {method: "POST", mode: "no-cors", body: body, headers: {"Content-Type": "text/plain"}})
  .then(() => done("answered"), () => done("answered"));  // the answer is unreadable either way
"""


def test_another_site_cannot_post_a_decision(
    browser: webdriver.Chrome, serve: Start, other_site: str
) -> None:
    server, decisions = serve([_record(0, "fine")])
    browser.get(server.url)
    _ready(browser, "question 0")
    rollout_id = browser.execute_script("return document.getElementById('meta').textContent")
    rollout_id = rollout_id.split("id ")[1][:16]
    browser.get(other_site)
    target = server.url.replace("/?token=", "/api/decisions?token=")  # even knowing the token
    body = orjson.dumps({"rollout_id": rollout_id, "decision": "reject", "note": "csrf"}).decode()
    assert browser.execute_async_script(CROSS_SITE_POST, target, body) == "answered"
    time.sleep(0.3)  # the request was sent (a simple POST needs no preflight): it must save nothing
    assert _lines(decisions) == []


def test_screenshot_of_a_real_rollout(browser: webdriver.Chrome, serve: Start, real_dir: Path) -> None:
    folder = os.environ.get("ROLLCRAFT_SCREENSHOT")
    if not folder:
        pytest.skip("set ROLLCRAFT_SCREENSHOT=DIR to take a screenshot")
    name = os.environ.get(
        "ROLLCRAFT_SCREENSHOT_FILE",
        "resources_servers_conversational_tool_use_simulation_data_example_rollouts.jsonl",
    )
    lines = (real_dir / name).read_bytes().splitlines()[:8]
    server, _ = serve(lines)
    browser.get(server.url)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    time.sleep(0.5)
    browser.save_screenshot(str(Path(folder) / "review.png"))
