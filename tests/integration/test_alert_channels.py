"""Channels against real receivers on 127.0.0.1: the Alertmanager webhook format
field by field, Slack's coloured attachment, email over a real SMTP server (plain,
STARTTLS, implicit TLS, with a login) — and no secret in any error."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from atlas.agent.settings import settings_from_dict
from atlas.alerting.channels import Channel
from atlas.alerting.delivery import build_channel
from atlas.alerting.model import Notification
from atlas.alerting.redact import Redactor
from atlas.alerting.routing import notifications_for
from atlas.alerting.settings import ChannelSettings
from atlas.alerting.smtp import SmtplibSmtp
from atlas.alerting.templates import render_annotations
from atlas.errors import PermanentDeliveryError, TemporaryDeliveryError
from atlas.monitoring.http import HttpxHttp
from atlas.monitoring.rules import EngineState, evaluate
from atlas.monitoring.samples import SampleSet, sample
from tests.support.mailserver import Cert, MailServer
from tests.support.monitoring import TestServer, config

T0 = 1_700_000_000.0
ENV_SECRET_URL = "ATLAS_SECRET_HOOK_URL"


def channel_settings(tmp_path: Any, ch: dict[str, Any]) -> ChannelSettings:
    s = settings_from_dict(config(tmp_path, rules=[], channels=[ch]))
    return s.alerting.channels[0]


def make(
    ch: ChannelSettings, env: dict[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> Channel:
    return build_channel(
        ch,
        env or {},
        http=HttpxHttp(),
        smtp=SmtplibSmtp(),
        redactor=Redactor(),
        version="0.1.0",
        tls_context=tls,
    )


def notifications(
    channel: ChannelSettings,
    *,
    resolve: bool = False,
    summary: str = "Disk {{ labels.mount }} is {{ value }}% full <b>",
    labels: dict[str, str] | None = None,
) -> list[Notification]:
    """Real notifications out of the engine: 'disk-full' firing for two mounts (and,
    with ``resolve``, one of them resolving an hour later)."""
    from atlas.monitoring.rules import Rule
    from atlas.monitoring.samples import Selector

    r = Rule(
        "disk-full",
        Selector("disk_used"),
        ">",
        90.0,
        0,
        0,
        0,
        "critical",
        (channel.name,),
        {"team": "ops", **(labels or {})},
        {"summary": summary, "runbook_url": "http://rb/disk"},
    )
    series = [sample("disk_used", 95, mount="/"), sample("disk_used", 97, mount="/data")]
    ev = evaluate([r], SampleSet(series), EngineState(), T0, annotate=render_annotations)
    groups = list(ev.groups)
    if resolve:
        series = [sample("disk_used", 95, mount="/"), sample("disk_used", 10, mount="/data")]
        ev = evaluate([r], SampleSet(series), ev.state, T0 + 3600, annotate=render_annotations)
        groups = list(ev.groups)
    out = []
    for g in groups:
        made, unknown = notifications_for(
            g,
            r.channels,
            {channel.name: channel},
            external_url="http://atlas.test",
            environment="prod",
        )
        assert not unknown
        out += made
    return out


# ---------------------------------------------------------------- webhook


def hook(url: str | None = None, url_env: str | None = None, **kw: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"timeoutSeconds": 2}
    if url:
        block["url"] = url
    if url_env:
        block["urlEnv"] = url_env
    block.update(kw)
    return {
        "name": "pager",
        "type": "webhook",
        "sendResolved": True,
        "templates": {},
        "webhook": block,
    }


def test_webhook_sends_alertmanager_v4_json_field_by_field(
    tmp_path: Any, server: TestServer
) -> None:
    ch = channel_settings(tmp_path, hook(server.url + "/alerts"))
    (n,) = notifications(ch)
    make(ch).send(n, "key-1")
    (req,) = server.requests
    assert req.path == "/alerts"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Idempotency-Key"] == "key-1"
    assert req.headers["User-Agent"] == "atlas-monitoring/0.1.0"
    body = req.json()
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert body["groupKey"] == '{}/{receiver="pager"}:{alertname="disk-full"}'
    assert body["truncatedAlerts"] == 0
    assert body["status"] == "firing"
    assert body["receiver"] == "pager"
    assert body["groupLabels"] == {"alertname": "disk-full"}
    assert body["commonLabels"] == {"alertname": "disk-full", "severity": "critical", "team": "ops"}
    assert body["commonAnnotations"] == {"runbook_url": "http://rb/disk"}
    assert body["externalURL"] == "http://atlas.test"
    assert len(body["alerts"]) == 2
    first = body["alerts"][0]
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert first["status"] == "firing"
    assert first["labels"] == {
        "alertname": "disk-full",
        "severity": "critical",
        "team": "ops",
        "mount": "/",
    }
    assert first["annotations"] == {
        "summary": "Disk / is 95% full <b>",
        "runbook_url": "http://rb/disk",
    }
    assert first["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["generatorURL"] == "http://atlas.test"
    assert (
        len(first["fingerprint"]) == 16 and first["fingerprint"] != body["alerts"][1]["fingerprint"]
    )


def test_webhook_resolved_carries_ends_at(tmp_path: Any, server: TestServer) -> None:
    ch = channel_settings(tmp_path, hook(server.url))
    (n,) = notifications(ch, resolve=True)
    make(ch).send(n, "k")
    body = server.requests[0].json()
    assert body["status"] == "resolved"
    (a,) = body["alerts"]
    assert a["status"] == "resolved" and a["labels"]["mount"] == "/data"
    assert a["startsAt"] == "2023-11-14T22:13:20.000Z" and a["endsAt"] == "2023-11-14T23:13:20.000Z"


def test_webhook_max_alerts_truncates(tmp_path: Any, server: TestServer) -> None:
    ch = channel_settings(tmp_path, hook(server.url, maxAlerts=1))
    (n,) = notifications(ch)
    make(ch).send(n, "k")
    body = server.requests[0].json()
    assert len(body["alerts"]) == 1 and body["truncatedAlerts"] == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TemporaryDeliveryError),
        (503, TemporaryDeliveryError),
        (429, TemporaryDeliveryError),
        (408, TemporaryDeliveryError),
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
        (301, PermanentDeliveryError),
    ],
)
def test_webhook_status_codes(tmp_path: Any, server: TestServer, status: int, error: type) -> None:
    ch = channel_settings(tmp_path, hook(server.url))
    (n,) = notifications(ch)
    server.state.status = status
    with pytest.raises(error, match=f"webhook answered HTTP {status}: receiver says no"):
        make(ch).send(n, "k")


def test_a_secret_webhook_url_never_shows_in_errors(tmp_path: Any, server: TestServer) -> None:
    secret = server.url + "/hooks/T0001/B0002/sEcReTtOkEn123"
    ch = channel_settings(tmp_path, hook(url_env=ENV_SECRET_URL))
    (n,) = notifications(ch)
    server.state.status = 404
    server.state.error_body = "no hook at {path}"
    channel = make(ch, {ENV_SECRET_URL: secret})
    with pytest.raises(PermanentDeliveryError) as info:
        channel.send(n, "k")
    assert "sEcReTtOkEn123" not in str(info.value)
    assert "no hook at <redacted>" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_secret_is_a_temporary_error_naming_the_variable(tmp_path: Any) -> None:
    ch = channel_settings(tmp_path, hook(url_env=ENV_SECRET_URL))
    (n,) = notifications(ch)
    with pytest.raises(
        TemporaryDeliveryError, match=f"environment variable {ENV_SECRET_URL} is empty"
    ):
        make(ch, {}).send(n, "k")


# ---------------------------------------------------------------- slack


def slack(**kw: Any) -> dict[str, Any]:
    block = {"urlEnv": "ATLAS_SECRET_SLACK", "channel": "#ops", "username": "atlas"}
    block.update(kw)
    return {"name": "chat", "type": "slack", "sendResolved": True, "templates": {}, "slack": block}


def test_slack_colours_firing_danger_and_resolved_good(tmp_path: Any, server: TestServer) -> None:
    ch = channel_settings(tmp_path, slack())
    env = {"ATLAS_SECRET_SLACK": server.url + "/services/T/B/xyz"}
    (firing,) = notifications(ch)
    (resolved,) = notifications(ch, resolve=True)
    make(ch, env).send(firing, "a")
    make(ch, env).send(resolved, "b")
    one, two = (r.json() for r in server.requests)
    assert server.requests[0].path == "/services/T/B/xyz"
    assert one["channel"] == "#ops" and one["username"] == "atlas"
    (att,) = one["attachments"]
    assert att["color"] == "danger"
    assert att["title"] == "[prod] FIRING:2 disk-full (critical)" == one["text"]
    assert "Disk / is 95% full" in att["text"] and "Disk /data is 97% full" in att["text"]
    assert att["title_link"] == "http://atlas.test" and att["ts"] == int(T0)
    (att,) = two["attachments"]
    assert att["color"] == "good" and att["title"].startswith("[prod] RESOLVED disk-full")
    assert "resolved" in att["text"]


def test_slack_text_can_be_overridden_per_channel(tmp_path: Any, server: TestServer) -> None:
    ch = channel_settings(
        tmp_path, {**slack(), "templates": {"text": "{{ alerts | length }} alerts on {{ rule }}"}}
    )
    (n,) = notifications(ch)
    make(ch, {"ATLAS_SECRET_SLACK": server.url}).send(n, "k")
    assert server.requests[0].json()["attachments"][0]["text"] == "2 alerts on disk-full"


HOSTILE = "Disk <!channel> & {{ labels.mount }} > 90%"


def test_slack_escapes_every_value_from_labels_and_annotations(
    tmp_path: Any, server: TestServer
) -> None:
    """Slack reads <!channel>, <@U1> and <url|text> in text; values must not ping anyone."""
    subject = "{{ rule }} for {{ commonLabels.get('team') }}"
    ch = channel_settings(tmp_path, {**slack(), "templates": {"subject": subject}})
    (n,) = notifications(ch, summary=HOSTILE, labels={"team": "<!here>"})
    make(ch, {"ATLAS_SECRET_SLACK": server.url}).send(n, "k")
    body = server.requests[0].json()
    (att,) = body["attachments"]
    assert "*Disk &lt;!channel&gt; &amp; /data &gt; 90%*" in att["text"]
    assert att["title"] == "disk-full for &lt;!here&gt;" == body["text"]
    assert att["fallback"] == att["title"]
    for field in (att["text"], att["title"], body["text"]):
        assert "<!" not in field and "& " not in field
    assert att["text"].startswith(":fire: *"), "the template's own markup is kept"


def test_slack_escapes_values_in_an_overridden_template_too(
    tmp_path: Any, server: TestServer
) -> None:
    text = "<{{ externalURL }}|Atlas>: {{ alerts[0].annotations.summary }}"
    ch = channel_settings(tmp_path, {**slack(), "templates": {"text": text}})
    (n,) = notifications(ch, summary=HOSTILE)
    make(ch, {"ATLAS_SECRET_SLACK": server.url}).send(n, "k")
    got = server.requests[0].json()["attachments"][0]["text"]
    assert got == "<http://atlas.test|Atlas>: Disk &lt;!channel&gt; &amp; / &gt; 90%"


# ---------------------------------------------------------------- email


@pytest.fixture
def mail(request: pytest.FixtureRequest, smtp_cert: Cert) -> Iterator[MailServer]:
    security, login = request.param
    m = MailServer(security=security, cert=smtp_cert, login=login)
    yield m
    m.close()


def email(port: int, security: str, **kw: Any) -> dict[str, Any]:
    block = {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "from": "atlas@example.com",
        "to": ["ops@example.com", "oncall@example.com"],
        "timeoutSeconds": 5,
    }
    block.update(kw)
    return {"name": "ops", "type": "email", "sendResolved": True, "templates": {}, "email": block}


PASSWORD = "pa55-w0rd-secret"


@pytest.mark.parametrize("mail", [("none", None)], indirect=True)
def test_email_has_a_text_and_an_html_part(tmp_path: Any, mail: MailServer) -> None:
    ch = channel_settings(tmp_path, email(mail.port, "none"))
    (n,) = notifications(ch)
    make(ch).send(n, "abc123")
    (d,) = mail.messages
    assert d.mail_from == "atlas@example.com"
    assert d.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    msg = d.message
    assert msg["Subject"] == "[prod] FIRING:2 disk-full (critical)"
    assert msg["To"] == "ops@example.com, oncall@example.com"
    assert msg["Message-ID"] == "<abc123@atlas-monitoring.invalid>"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "FIRING: disk-full (prod)" in text
    assert "Disk / is 95% full <b>" in text and "mount=/data" in text
    assert "runbook: http://rb/disk" in text
    assert "Disk / is 95% full &lt;b&gt;" in html, "the HTML part is escaped"
    assert "<table" in html


@pytest.mark.parametrize("mail", [("none", None)], indirect=True)
def test_email_html_escapes_labels_and_overrides_but_text_keeps_them(
    tmp_path: Any, mail: MailServer
) -> None:
    html = "<p>{{ alerts[0].labels.get('team') }} {{ alerts[0].annotations.summary }}</p>"
    ch = channel_settings(tmp_path, {**email(mail.port, "none"), "templates": {"html": html}})
    (n,) = notifications(ch, summary=HOSTILE, labels={"team": '<a href="x">o&p</a>'})
    make(ch).send(n, "k")
    msg = mail.messages[0].message
    got = msg.get_body(("html",)).get_content()
    assert got.strip() == (
        "<p>&lt;a href=&#34;x&#34;&gt;o&amp;p&lt;/a&gt; Disk &lt;!channel&gt; &amp; / &gt; 90%</p>"
    )
    text = msg.get_body(("plain",)).get_content()
    assert "Disk <!channel> & / > 90%" in text and 'team=<a href="x">o&p</a>' in text
    assert msg["Subject"] == "[prod] FIRING:2 disk-full (critical)"


@pytest.mark.parametrize(
    ("mail", "security"),
    [(("starttls", ("atlas", PASSWORD)), "starttls"), (("tls", ("atlas", PASSWORD)), "tls")],
    indirect=["mail"],
    ids=["starttls", "implicit-tls"],
)
def test_email_over_tls_with_a_login(
    tmp_path: Any, mail: MailServer, smtp_cert: Cert, security: str
) -> None:
    ch = channel_settings(
        tmp_path, email(mail.port, security, username="atlas", passwordEnv="ATLAS_SECRET_SMTP")
    )
    (n,) = notifications(ch)
    make(ch, {"ATLAS_SECRET_SMTP": PASSWORD}, smtp_cert.client_context()).send(n, "k")
    (d,) = mail.messages
    assert d.tls and d.login == "atlas"


@pytest.mark.parametrize("mail", [("tls", None)], indirect=True)
def test_email_verifies_certificates_by_default(tmp_path: Any, mail: MailServer) -> None:
    ch = channel_settings(tmp_path, email(mail.port, "tls"))
    (n,) = notifications(ch)
    with pytest.raises(TemporaryDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        make(ch).send(n, "k")
    assert not mail.messages


@pytest.mark.parametrize("mail", [("starttls", ("atlas", PASSWORD))], indirect=True)
def test_a_refused_login_is_retried_and_never_shows_the_password(
    tmp_path: Any, mail: MailServer, smtp_cert: Cert
) -> None:
    wrong = "wrong-" + PASSWORD
    ch = channel_settings(
        tmp_path, email(mail.port, "starttls", username="atlas", passwordEnv="ATLAS_SECRET_SMTP")
    )
    (n,) = notifications(ch)
    with pytest.raises(TemporaryDeliveryError, match=r"refused the login \(535\)") as info:
        make(ch, {"ATLAS_SECRET_SMTP": wrong}, smtp_cert.client_context()).send(n, "k")
    assert wrong not in str(info.value) and info.value.__cause__ is None
    assert not mail.messages


@pytest.mark.parametrize("mail", [("none", None)], indirect=True)
def test_a_rejected_message_is_permanent(tmp_path: Any, mail: MailServer) -> None:
    mail.handler.reject_with = "554 5.6.0 message rejected"
    ch = channel_settings(tmp_path, email(mail.port, "none"))
    (n,) = notifications(ch)
    with pytest.raises(PermanentDeliveryError, match=r"answered 554: 5\.6\.0 message rejected"):
        make(ch).send(n, "k")


def test_an_unreachable_smtp_server_is_temporary(tmp_path: Any) -> None:
    from tests.support.net import free_port

    ch = channel_settings(tmp_path, email(free_port(), "none"))
    (n,) = notifications(ch)
    with pytest.raises(TemporaryDeliveryError, match="ConnectionRefusedError"):
        make(ch).send(n, "k")


def test_redactor_catches_the_forms_a_secret_takes() -> None:
    r = Redactor()
    r.add("https://hooks.slack.com/services/T1/B2/abcdef", None)
    r.add("hunter2-password", "atlas")
    import base64

    plain = base64.b64encode(b"\0atlas\0hunter2-password").decode()
    text = (
        "POST https://hooks.slack.com/services/T1/B2/abcdef failed; path /services/T1/B2/abcdef; "
        "quoted https%3A%2F%2Fhooks.slack.com%2Fservices%2FT1%2FB2%2Fabcdef; "
        f"auth {plain}; pw hunter2-password"
    )
    out = r(text)
    for needle in ("abcdef", "hunter2", plain):
        assert needle not in out
    assert json.dumps(out).count("<redacted>") == 5


def test_resolved_goes_only_where_the_channel_asks_for_it(tmp_path: Any) -> None:
    quiet = channel_settings(tmp_path, {**hook("http://127.0.0.1:9/"), "sendResolved": False})
    assert notifications(quiet, resolve=True) == [], "only a resolved alert: nothing to send"
    loud = channel_settings(tmp_path, hook("http://127.0.0.1:9/"))
    (n,) = notifications(loud, resolve=True)
    assert [a.status for a in n.alerts] == ["resolved"]


def test_log_records_and_tracebacks_are_redacted() -> None:
    import logging

    from atlas.alerting.redact import protect_logs

    stream = __import__("io").StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    r = Redactor(["https://hooks.example/T/very-secret"])
    undo = protect_logs(r)
    try:
        logging.getLogger("atlas.test").error(
            "posting to %s", "https://hooks.example/T/very-secret"
        )
        try:
            raise RuntimeError("boom at https://hooks.example/T/very-secret")
        except RuntimeError:
            logging.getLogger("atlas.test").exception("failed")
        logging.getLogger("httpx").info("HTTP Request: POST https://hooks.example/T/very-secret")
    finally:
        undo()
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "very-secret" not in text
    assert "posting to <redacted>" in text and "RuntimeError: boom at <redacted>" in text
