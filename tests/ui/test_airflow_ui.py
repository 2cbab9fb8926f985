"""The Airflow UI in a real browser: the API server on the metadata the local runner uses, opened
in headless Chromium (Debian's chromium and chromedriver; nothing is downloaded): log in, find
promo_weekly, open its trigger form, check its typed fields and that it refuses a bad value.

The form's screenshot is saved in the test's output folder; PROMO_SAVE_SCREENSHOT=1 also copies
it to docs/images/airflow_form.png.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from local.runner import _ensure_airflow_db, airflow_env, dbt_parse
from promoflow.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AIRFLOW = Path(sys.executable).parent / "airflow"
DOCS_SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "airflow_form.png"
WAIT_S = 60

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed "
                       "(scripts/bootstrap.sh installs them)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"airflow api-server exited ({server.returncode}):\n"
                        f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"airflow api-server did not answer in 180 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def airflow_ui(settings, tmp_path_factory):
    """(URL, admin password) of an API server on this session's Airflow metadata database."""
    out = tmp_path_factory.mktemp("airflow_ui")
    env = airflow_env(settings)
    _ensure_airflow_db(settings, env)
    dbt_parse(env)  # the manifest promo_weekly renders its dbt tasks from
    result = subprocess.run([str(AIRFLOW), "dags", "reserialize"], env=env, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env.update(AIRFLOW__API__BASE_URL=url, AIRFLOW__API__WORKERS="1")
    log = out / "api-server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "1"], env=env, stdout=sink,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(url, server, log)
        passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        yield url, json.loads(passwords.read_text())["admin"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager never downloads a browser
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1500",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    yield driver
    (tmp_path / "last_page.html").write_text(driver.page_source)  # to debug a failure
    driver.quit()


def _field(driver, name: str):
    return driver.find_element(By.NAME, f"element_{name}")


def _submit(driver):
    return driver.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]")


def _click(wait: WebDriverWait, css: str) -> None:
    """Click once the element is there and clickable (React may re-render it meanwhile)."""
    wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, css).click() or True)


def _dag_runs(settings, dag_id: str) -> int:
    with psycopg2.connect(host=settings.pg_host, port=settings.pg_port,
                          dbname=f"{settings.pg_db}_airflow", user=settings.pg_user,
                          password=settings.pg_password) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from dag_run where dag_id = %s", (dag_id,))
        return cur.fetchone()[0]


def test_trigger_form_is_typed_and_refuses_bad_values(settings, airflow_ui, browser, tmp_path):
    url, password = airflow_ui
    runs_before = _dag_runs(settings, "promo_weekly")  # other tests run the DAG in this database
    # the React app re-renders elements while it loads: look them up again rather than fail
    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(
        StaleElementReferenceException, ElementClickInterceptedException))
    browser.get(f"{url}/")
    wait.until(EC.element_to_be_clickable((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    _click(wait, "button[type=submit]:enabled")
    wait.until(EC.url_to_be(f"{url}/"))

    # the DAG list shows both DAGs
    browser.get(f"{url}/dags")
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "promo_weekly"))
    links = browser.find_elements(By.CSS_SELECTOR, "a[data-testid=dag-id]")
    assert {"promo_weekly", "promo_measure"} <= {link.text for link in links}
    _click(wait, "a[data-testid=dag-id][href='/dags/promo_weekly']")
    wait.until(EC.url_to_be(f"{url}/dags/promo_weekly"))

    # the trigger form: one typed field per run parameter, with the contract's defaults
    _click(wait, "[data-testid=trigger-dag-button]")
    wait.until(EC.visibility_of_element_located((By.NAME, "element_max_discount")))
    for name, value, low, high in (("budget", "5000", "0", "1000000000"),
                                   ("max_discount", "0.3", "0", "0.9"),
                                   ("audience_size", "200", "1", "1000000")):
        field = _field(browser, name)
        assert field.get_attribute("role") == "spinbutton", name  # a number field
        assert (field.get_attribute("value"), field.get_attribute("aria-valuemin"),
                field.get_attribute("aria-valuemax")) == (value, low, high), name
    assert _field(browser, "dataset").get_attribute("value") == "demo"
    plan_week = _field(browser, "plan_week")
    assert plan_week.get_attribute("value") == ""
    assert plan_week.get_attribute("required") is None  # optional: empty = week after the data
    wait.until(lambda driver: _submit(driver).is_enabled())  # the defaults can be sent as is

    # a discount above its maximum is not kept: the field falls back to 0.9
    _field(browser, "max_discount").send_keys(Keys.CONTROL, "a", Keys.NULL, "5")
    assert _field(browser, "max_discount").get_attribute("value") == "5"
    _field(browser, "dataset").click()
    wait.until(lambda driver: _field(driver, "max_discount").get_attribute("value") == "0.9")

    # a plan week that is not a date: the trigger is refused with the parameter named
    _field(browser, "plan_week").send_keys("next monday")
    wait.until(lambda driver: _submit(driver).is_enabled())
    _click(wait, "[data-testid=trigger-dag-submit]")
    alert = wait.until(EC.visibility_of_element_located(
        (By.CSS_SELECTOR, "[data-testid=error-alert]")))
    assert "Invalid input for param plan_week: 'next monday' does not match" in alert.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", alert)
    shot = tmp_path / "airflow_form.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    if os.environ.get("PROMO_SAVE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert _dag_runs(settings, "promo_weekly") == runs_before  # nothing was started
