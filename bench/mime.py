"""MIME layer speed: parses/s and renders/s.  Prints figures, asserts nothing.

    .venv/bin/python bench/mime.py [messages-dir]

Uses the reference test messages when present, plus generated 4 KiB and
100 KiB messages.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailsuite.mime.bodystructure import bodystructure
from mailsuite.mime.envelope import envelope
from mailsuite.mime.structure import Part, parse_message


def _message(size: int) -> bytes:
    header = (
        b"Received: from mx.example.net by mail.example.com; Thu, 1 Feb 2024 10:00:00 +0000\r\n"
        b"From: Alice Example <alice@example.net>\r\nTo: Bob <bob@example.com>, c@example.org\r\n"
        b"Subject: =?utf-8?q?Quarterly_report_=E2=80=93_draft?=\r\n"
        b"Date: Thu, 1 Feb 2024 10:00:00 +0000\r\nMessage-ID: <1234@example.net>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    )
    text = b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    attach = (
        b'--outer\r\nContent-Type: application/pdf; name="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n"
    )
    b64 = b"JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZU==\r\n"
    body = len(header) + len(text) + len(attach) + 12
    n_text = max(1, (size - body) // 3 // len(line))
    n_b64 = max(1, (size - body - n_text * len(line)) // len(b64))
    return header + text + line * n_text + attach + b64 * n_b64 + b"--outer--\r\n"


def _rate(fn, seconds: float = 1.0) -> float:  # type: ignore[no-untyped-def]
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(20):
            fn()
        count += 20
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main() -> None:
    samples = {"4 KiB": _message(4096), "100 KiB": _message(100 * 1024)}
    folder = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else (Path(__file__).resolve().parents[2] / "shared" / "testdata" / "messages")
    )
    if folder.is_dir():
        msgs = [re.sub(rb"\r?\n", b"\r\n", p.read_bytes()) for p in sorted(folder.glob("*.eml"))]
        msgs = [m for m in msgs if len(m) < 300_000]
        samples["test corpus (<300 KB, per msg)"] = msgs  # type: ignore[assignment]
    for label, raw in samples.items():
        batch = raw if isinstance(raw, list) else [raw]
        part = [parse_message(m) for m in batch]
        data = [p.to_data() for p in part]
        parse = _rate(lambda b=batch: [parse_message(m) for m in b]) * len(batch)
        bs = _rate(lambda ps=part: [bodystructure(p) for p in ps]) * len(batch)
        env = _rate(lambda ps=part: [envelope(p) for p in ps]) * len(batch)
        load = _rate(lambda ds=data: [Part.from_data(d) for d in ds]) * len(batch)
        size = sum(len(m) for m in batch) // len(batch)
        print(
            f"{label:32s} avg {size:7d} B: parse {parse:9.0f}/s ({1e3 / parse:.3f} ms)"
            f"  bodystructure {bs:8.0f}/s  envelope {env:8.0f}/s  from_data {load:8.0f}/s"
        )


if __name__ == "__main__":
    main()
