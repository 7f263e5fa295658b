#!/usr/bin/python3
"""Sends one message with Python's smtplib and prints the outcome as JSON.

Used by tests/integration/smtplib_spec.lua. Arguments:

  smtplib_send.py PORT MODE FROM TO[,TO...] [KIND]

  MODE   plain | starttls | ssl (implicit TLS: smtplib.SMTP_SSL)
  KIND   text (default): sendmail() with a small ASCII message
         utf8: send_message() of an EmailMessage with a UTF-8 body sent
               8bit, with mail_options BODY=8BITMIME
         big: sendmail() of a 10 KiB ASCII message (smtplib adds SIZE=)
         ehlo: only EHLO, then QUIT

The JSON printed on stdout has:
  ok               true if no exception was raised
  error            the exception class name, and error_args its details
                   (for SMTPRecipientsRefused: {rcpt: [code, text]})
  refused          what sendmail()/send_message() returned (refused rcpts)
  ehlo_resp        the EHLO reply text (the one after STARTTLS, if any)
  esmtp_features   smtplib's parsed EHLO keywords
  tls_version      the negotiated TLS version, or null
  sent_hex         hex of the message bytes handed to smtplib's data()
                   (before dot-stuffing, CRLF line ends)
  data_reply       [code, text] of the reply to the end of data

The server's certificate is self-signed: verification is off.
"""
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage

HOST = "127.0.0.1"
TIMEOUT = 10

UTF8_BODY = (
    "Grüße aus Köln — ünïcödé ☃ 日本語\n"
    ".a line starting with a dot\n"
    "..two dots\n"
    ".\n"
    "last line ✓\n"
)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Recording:
    """Mixin: remembers the bytes given to data() and its reply."""

    sent = None
    data_reply = None

    def data(self, msg):
        self.sent = msg if isinstance(msg, bytes) else msg.encode("ascii")
        code, text = super().data(msg)
        self.data_reply = [code, text.decode("utf-8", "replace")]
        return code, text


class SMTP(Recording, smtplib.SMTP):
    pass


class SMTP_SSL(Recording, smtplib.SMTP_SSL):
    pass


def text_message(sender, rcpts):
    return (
        "From: <%s>\r\nTo: %s\r\nSubject: smtplib test\r\n\r\n"
        "Hello from smtplib.\r\n.dot line\r\n" % (sender, ", ".join("<%s>" % r for r in rcpts))
    )


def utf8_message(sender, rcpts):
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(rcpts)
    m["Subject"] = "8bit body"
    m.set_content(UTF8_BODY, charset="utf-8", cte="8bit")
    return m


def main():
    port, mode, sender, to = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    kind = sys.argv[5] if len(sys.argv) > 5 else "text"
    rcpts = [r for r in to.split(",") if r]
    out = {"ok": False, "error": None, "error_args": None, "refused": None,
           "ehlo_resp": None, "esmtp_features": None, "tls_version": None,
           "sent_hex": None, "data_reply": None}
    s = None
    try:
        if mode == "ssl":
            s = SMTP_SSL(HOST, port, local_hostname="client.example.test",
                         timeout=TIMEOUT, context=tls_context())
        else:
            s = SMTP(HOST, port, local_hostname="client.example.test", timeout=TIMEOUT)
        s.ehlo()
        if mode == "starttls":
            s.starttls(context=tls_context())
            s.ehlo()
        out["ehlo_resp"] = s.ehlo_resp.decode("utf-8", "replace") if s.ehlo_resp else None
        out["esmtp_features"] = dict(s.esmtp_features)
        if mode in ("starttls", "ssl"):
            out["tls_version"] = s.sock.version()
        if kind == "text":
            out["refused"] = s.sendmail(sender, rcpts, text_message(sender, rcpts))
        elif kind == "big":
            big = text_message(sender, rcpts) + ("x" * 78 + "\r\n") * 128
            out["refused"] = s.sendmail(sender, rcpts, big)
        elif kind == "utf8":
            out["refused"] = s.send_message(utf8_message(sender, rcpts), sender, rcpts,
                                            mail_options=["BODY=8BITMIME"])
        if out["refused"]:
            out["refused"] = {r: [c, t.decode("utf-8", "replace")]
                              for r, (c, t) in out["refused"].items()}
        s.quit()
        out["ok"] = True
    except smtplib.SMTPRecipientsRefused as e:
        out["error"] = type(e).__name__
        out["error_args"] = {r: [c, t.decode("utf-8", "replace")]
                             for r, (c, t) in e.recipients.items()}
    except smtplib.SMTPResponseException as e:
        out["error"] = type(e).__name__
        out["error_args"] = [e.smtp_code, e.smtp_error.decode("utf-8", "replace")
                             if isinstance(e.smtp_error, bytes) else str(e.smtp_error)]
    except Exception as e:  # noqa: BLE001 - reported to the spec, not hidden
        out["error"] = type(e).__name__
        out["error_args"] = str(e)
    if s is not None:
        if s.sent is not None:
            out["sent_hex"] = s.sent.hex()
        out["data_reply"] = s.data_reply
        try:
            s.close()
        except Exception:  # noqa: BLE001
            pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
