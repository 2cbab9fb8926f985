"""A task's last failed try sends one alert: a JSON POST to the webhook of the alert
connection, an e-mail through an SMTP connection, or one warning log line when no connection is
set (a real `airflow dags test`)."""

import email
import json
import subprocess
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from local.runner import _ensure_airflow_db, airflow_env

pytestmark = pytest.mark.integration

DAG_FILE = '''
from datetime import datetime

from airflow.sdk import dag, task

from promoflow.alerts import FailureAlert


@dag(dag_id="alert_check", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
     default_args={"retries": 0, "on_failure_callback": FailureAlert()})
def alert_check():
    @task
    def load_orders():
        raise RuntimeError("warehouse unreachable at 127.0.0.1:1\\nsecond line of the error")

    @task(on_failure_callback=FailureAlert(conn_id="promo_alerts_unset"))
    def load_products():
        raise ValueError("products file is empty")

    @task(on_failure_callback=FailureAlert(conn_id="promo_alerts_mail"))
    def load_prices():
        raise OSError("prices file unreadable")

    @task
    def fine():
        return 1

    load_orders()
    load_products()
    load_prices()
    fine()


alert_check()
'''


RECEIVED: list[tuple] = []  # (path, content type, JSON body) of each POST
MAILS: list[tuple] = []  # (sender, recipients, message) of each e-mail


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        RECEIVED.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def mail_server():
    """A local SMTP server that keeps the messages it receives (stdlib smtpd, Python 3.11)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
        import smtpd

    class Keep(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            MAILS.append((mailfrom, rcpttos, data.decode() if isinstance(data, bytes) else data))

    server = Keep(("127.0.0.1", 0), None)
    thread = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1]
    server.close()


def test_failed_task_sends_one_alert(settings, tmp_path: Path, webhook, mail_server):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_check.py").write_text(DAG_FILE)
    env = airflow_env(settings)
    _ensure_airflow_db(settings, env)
    env.update(AIRFLOW__CORE__DAGS_FOLDER=str(dags), PROMO_ALERT_CONN_ID="promo_alerts",
               AIRFLOW_CONN_PROMO_ALERTS=f"http://127.0.0.1:{webhook.server_port}/hooks/promo")
    env["AIRFLOW_CONN_PROMO_ALERTS_MAIL"] = (
        f"smtp://127.0.0.1:{mail_server}?from_email=airflow%40example.com"
        "&to=ops%40example.com&disable_ssl=true&disable_tls=true")
    env.pop("AIRFLOW_CONN_PROMO_ALERTS_UNSET", None)
    start = time.time()
    result = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test",
                             "alert_check"], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    output = result.stdout + result.stderr
    assert time.time() - start < 120, "the failing DAG took too long"
    # the webhook got exactly one message, about the task that used it
    assert len(RECEIVED) == 1, output[-3000:]
    path, content_type, message = RECEIVED[0]
    assert path == "/hooks/promo" and content_type == "application/json"
    assert message["dag_id"] == "alert_check" and message["task_id"] == "load_orders"
    assert message["try_number"] == 1 and message["run_id"]
    assert message["error"] == "RuntimeError: warehouse unreachable at 127.0.0.1:1"
    assert "/dags/alert_check/runs/" in message["log_url"]
    assert "/tasks/load_orders" in message["log_url"]
    assert "task load_orders of alert_check failed" in message["text"]
    # no connection for the other task: one warning line instead
    lines = [line for line in output.splitlines() if "No alert channel" in line]
    assert len(lines) == 1, output[-3000:]
    assert "'promo_alerts_unset'" in lines[0] and "task load_products" in lines[0]
    assert "ValueError: products file is empty" in lines[0]
    # an SMTP connection: one e-mail to its recipient
    assert len(MAILS) == 1, output[-3000:]
    sender, recipients, mail = MAILS[0]
    assert (sender, recipients) == ("airflow@example.com", ["ops@example.com"])
    message = email.message_from_string(mail)
    assert message["Subject"] == "promoflow: task load_prices of alert_check failed"
    body = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_type() == "text/html")
    assert "error: OSError: prices file unreadable" in body
