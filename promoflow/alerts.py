"""Alerts on failed tasks: an Airflow notifier for the DAGs' `on_failure_callback`.

The channel is the Airflow connection named by PROMO_ALERT_CONN_ID (default `promo_alerts`,
e.g. from the environment variable AIRFLOW_CONN_PROMO_ALERTS):

- conn_type `http` or `https`: the message is POSTed as JSON to the webhook URL (host, port and
  path of the connection; a host holding a whole URL is used as is). The JSON has a `text` key,
  which Slack, Mattermost and Teams-style incoming webhooks show, and one key per detail.
- conn_type `smtp` (or `email`): an e-mail to the connection's extra `to` (comma-separated),
  from its extra `from_email`, through the SMTP provider's notifier.
- no such connection: one warning log line in the task log.

With PROMO_FAILURE_LOG set (the local runner sets it), the failure is also appended to that file.

A task with retries alerts only on its last failed try (Airflow calls `on_retry_callback`
before that).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from html import escape

from airflow.sdk import BaseNotifier, Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

log = logging.getLogger("promoflow.alerts")

DEFAULT_CONN_ID = "promo_alerts"
TIMEOUT_S = 10


def alert_conn_id() -> str:
    return os.environ.get("PROMO_ALERT_CONN_ID") or DEFAULT_CONN_ID


def failure_details(context) -> dict:
    """What failed, from an Airflow task context: dag, task, run, try, error line and log URL."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    if isinstance(error, AirflowFailException) and error.__cause__ is not None:
        error = error.__cause__  # a task's "fail without retrying" wrapper: the real error
    lines = str(error).strip().splitlines() if error is not None else []
    line = lines[0] if lines else ""
    if error is not None:
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    details = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error": line,
        "log_url": getattr(ti, "log_url", None),
    }
    details["text"] = (f"promoflow: task {details['task_id']} of {details['dag_id']} failed "
                       f"(run {details['run_id']}, try {details['try_number']}): "
                       f"{line or 'no error message'}. Log: {details['log_url']}")
    return details


def record_failure(details: dict) -> None:
    """Append the failure as a JSON line to the file PROMO_FAILURE_LOG names, if any: the local
    runner reads it to end a failed run with the failed task's own sentence."""
    path = os.environ.get("PROMO_FAILURE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({k: details[k] for k in ("dag_id", "task_id", "error")}) + "\n")


def webhook_url(conn) -> str:
    host = conn.host or ""
    if "://" in host:
        return host
    scheme = "https" if conn.conn_type == "https" else "http"
    port = f":{conn.port}" if conn.port else ""
    path = (conn.schema or "").lstrip("/")
    return f"{scheme}://{host}{port}/{path}"


class FailureAlert(BaseNotifier):
    """Send a one-message alert about a failed task to the configured channel."""

    def __init__(self, conn_id: str | None = None):
        super().__init__()
        self.conn_id = conn_id  # None: PROMO_ALERT_CONN_ID when the alert is sent

    def notify(self, context) -> None:
        details = failure_details(context)
        record_failure(details)
        conn_id = self.conn_id or alert_conn_id()
        try:
            conn = Connection.get(conn_id)
        except AirflowNotFoundException:
            log.warning("No alert channel (Airflow connection %r is not set): %s", conn_id,
                        details["text"])
            return
        if conn.conn_type in ("http", "https"):
            self._post(webhook_url(conn), details)
        elif conn.conn_type in ("smtp", "email"):
            self._mail(conn, details)
        else:
            raise ValueError(f"Alert connection {conn_id!r} has conn_type {conn.conn_type!r}; "
                             "use http, https or smtp.")
        log.info("Alert sent through %r (%s): %s", conn_id, conn.conn_type, details["text"])

    @staticmethod
    def _post(url: str, details: dict) -> None:
        request = urllib.request.Request(url, data=json.dumps(details).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()

    @staticmethod
    def _mail(conn, details: dict) -> None:
        to = [a.strip() for a in str(conn.extra_dejson.get("to") or "").split(",") if a.strip()]
        if not to:
            raise ValueError(f"Alert connection {conn.conn_id!r} has no recipient; set its extra "
                             '{"to": "a@example.com,b@example.com"}.')
        sender = conn.extra_dejson.get("from_email")
        subject = f"promoflow: task {details['task_id']} of {details['dag_id']} failed"
        body = "<br>".join(f"{escape(key)}: {escape(str(value))}" for key, value in
                           details.items() if key != "text")
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier
        except ImportError:  # no SMTP provider: plain smtplib on the connection's host and port
            import smtplib
            from email.message import EmailMessage

            message = EmailMessage()
            message["Subject"], message["From"], message["To"] = subject, sender, ", ".join(to)
            message.set_content(details["text"])
            with smtplib.SMTP(conn.host, conn.port or 25, timeout=TIMEOUT_S) as smtp:
                if conn.login:
                    smtp.starttls()
                    smtp.login(conn.login, conn.password)
                smtp.send_message(message)
            return
        SmtpNotifier(to=to, from_email=sender, smtp_conn_id=conn.conn_id, subject=subject,
                     html_content=body).notify(context={})
