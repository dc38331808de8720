#!/usr/bin/env python3
"""An integrating body publishing facts to training-ledger over NATS.

What a district's or a school's system does (docs/contract.md "Publishing
facts"): build each fact as a CloudEvent with the official CloudEvents SDK,
serialise it in structured JSON mode, publish it to JetStream on
``<prefix>.ingest.<publisher_id>`` with the contract's ``Nats-Msg-Id``, and
read the ledger's answer on ``<prefix>.receipts.<publisher_id>``.

It publishes a small history and checks every receipt against what the
contract says it must be:

1. the nomination of a first training place            -> accepted
2. the enrolment in that place                         -> accepted
3. the enrolment in a second place, sent before the
   nomination of that place                            -> parked
4. the nomination of the second place                  -> accepted,
   and then the parked enrolment                       -> accepted
5. a nomination with a negative amount                 -> rejected,
   field /data/funding/0/amount_vnd

Every receipt is printed as one line ``receipt <JSON>``; the last line is
``ok: ...`` or ``failed: ...``. The exit status is 0 only when every receipt
came and was the expected one.

Run ``python publisher.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
import dataclasses
from datetime import datetime, timezone

import nats
from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

FORMAT = JSONFormat()


@dataclasses.dataclass
class Expected:
    """What the ledger must answer for one fact, in order of arrival."""

    statuses: list[str]
    field: str | None = None
    received: list[dict] = dataclasses.field(default_factory=list)


class Publisher:
    def __init__(self, args: argparse.Namespace, nc, signing_key):
        self.args = args
        self.nc = nc
        self.js = nc.jetstream()
        self.signing_key = signing_key
        self.expected: dict[str, Expected] = {}
        self.problems: list[str] = []
        self.arrived = asyncio.Event()

    def message(self, fact_id: str, fact_type: str, data: dict) -> tuple[dict, bytes]:
        """The structured-mode message of one fact: headers and body."""
        attributes = {
            "id": fact_id,
            "source": self.args.source,
            "type": fact_type,
            "time": datetime.now(timezone.utc),
            "datacontenttype": "application/json",
        }
        structured = to_structured(CloudEvent(dict(attributes), data), FORMAT)
        if self.signing_key is not None:
            # The signature covers the event exactly as serialised, minus the
            # signature itself, in RFC 8785 canonical form: the ledger
            # recomputes the same bytes from what it receives.
            import rfc8785

            unsigned = json.loads(structured.body)
            signature = self.signing_key.sign(rfc8785.dumps(unsigned))
            attributes["tlsignature"] = signature.hex()
            structured = to_structured(CloudEvent(dict(attributes), data), FORMAT)
        return dict(structured.headers), structured.body

    async def publish(self, fact_id: str, fact_type: str, data: dict, expected: Expected):
        headers, body = self.message(fact_id, fact_type, data)
        # Source, id and the body's digest: JetStream drops a byte-identical
        # repeat inside its window; anything else reaches the ledger.
        headers["Nats-Msg-Id"] = "|".join(
            [self.args.source, fact_id, hashlib.sha256(body).hexdigest()]
        )
        self.expected[fact_id] = expected
        ack = await self.js.publish(
            f"{self.args.prefix}.ingest.{self.args.publisher}", body, headers=headers
        )
        print(f"published {fact_id} {fact_type} stream={ack.stream} seq={ack.seq}"
              f" duplicate={bool(ack.duplicate)}", flush=True)
        if ack.duplicate:
            self.problems.append(f"{fact_id}: JetStream took it for a duplicate")

    def on_receipt(self, receipt: dict) -> None:
        print("receipt " + json.dumps(receipt, ensure_ascii=False, sort_keys=True), flush=True)
        fact_id = receipt.get("id")
        expected = self.expected.get(fact_id)
        if receipt.get("source") != self.args.source or expected is None:
            self.problems.append(f"a receipt for a fact not published here: {receipt}")
        else:
            expected.received.append(receipt)
        self.arrived.set()

    async def wait_for(self, fact_id: str, count: int, deadline: float) -> None:
        """Until `fact_id` has `count` receipts or the deadline passes."""
        while len(self.expected[fact_id].received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def check(self) -> None:
        for fact_id, expected in self.expected.items():
            got = [r.get("status") for r in expected.received]
            if got != expected.statuses:
                self.problems.append(f"{fact_id}: receipts {got}, expected {expected.statuses}")
                continue
            last = expected.received[-1]
            if expected.field is not None and last.get("field") != expected.field:
                self.problems.append(
                    f"{fact_id}: rejected at {last.get('field')!r}, expected {expected.field!r}"
                )
            if last["status"] == "accepted" and not isinstance(last.get("position"), int):
                self.problems.append(f"{fact_id}: accepted without a position")


def nomination(args, enrollment_id: str, amount_vnd: int) -> dict:
    return {
        "enrollment_id": enrollment_id,
        "official_id": args.official,
        "nominating_unit_id": args.unit,
        "program": {
            "track": "professional",
            "level": "intermediate",
            "specialty": "public_admin",
            "title": "Trung cấp Hành chính",
        },
        "institution": {
            "institution_id": "qn-school",
            "name": "Trường Chính trị Quảng Nam",
            "in_province": True,
        },
        "planned_start": "2008-09-01",
        "planned_end": "2010-06-30",
        "funding": [{"source": "district", "amount_vnd": amount_vnd}],
        "decision_no": "45/QĐ-UBND",
        "effective_date": "2008-08-01",
    }


def enrolment(enrollment_id: str) -> dict:
    return {"enrollment_id": enrollment_id, "effective_date": "2008-09-01"}


async def run(args: argparse.Namespace) -> int:
    signing_key = None
    if args.signing_key:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signing_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(args.signing_key))

    # The custom inbox prefix: the publisher's NATS user may subscribe only
    # to _INBOX.<publisher_id>.>, and JetStream's publish acks come there.
    nc = await nats.connect(
        args.nats_url,
        inbox_prefix=f"_INBOX.{args.publisher}",
        connect_timeout=5,
        max_reconnect_attempts=0,
    )
    publisher = Publisher(args, nc, signing_key)

    async def receipt_arrived(msg):
        try:
            publisher.on_receipt(json.loads(msg.data))
        except ValueError:
            publisher.problems.append(f"a receipt that is not JSON: {msg.data!r}")

    # Subscribed (and flushed) before the first publish, so no receipt is missed.
    await nc.subscribe(f"{args.prefix}.receipts.{args.publisher}", cb=receipt_arrived)
    await nc.flush()

    run_id = args.run
    first, second, bad = (f"{run_id}-1", f"{run_id}-2", f"{run_id}-3")
    deadline = time.monotonic() + args.timeout
    # Each fact is published once its predecessor is answered: the history
    # is sent in the order a body's system would send it.
    steps = [
        (f"nom-{first}", "training.nominated.v1", nomination(args, f"e-{first}", 4_500_000),
         Expected(["accepted"])),
        (f"enr-{first}", "training.enrolled.v1", enrolment(f"e-{first}"), Expected(["accepted"])),
        (f"enr-{second}", "training.enrolled.v1", enrolment(f"e-{second}"),
         Expected(["parked", "accepted"])),
        (f"nom-{second}", "training.nominated.v1", nomination(args, f"e-{second}", 3_000_000),
         Expected(["accepted"])),
        (f"nom-{bad}", "training.nominated.v1", nomination(args, f"e-{bad}", -1),
         Expected(["rejected"], field="/data/funding/0/amount_vnd")),
    ]
    try:
        for fact_id, fact_type, data, expected in steps:
            await publisher.publish(fact_id, fact_type, data, expected)
            await publisher.wait_for(fact_id, 1, deadline)
        for fact_id, expected in publisher.expected.items():
            await publisher.wait_for(fact_id, len(expected.statuses), deadline)
        # A moment more, so that an unexpected extra receipt is seen too.
        await asyncio.sleep(0.3)
    finally:
        await nc.drain()

    publisher.check()
    receipts = sum(len(e.received) for e in publisher.expected.values())
    if publisher.problems:
        for problem in publisher.problems:
            print(f"problem: {problem}", flush=True)
        print(f"failed: {len(publisher.problems)} problems", flush=True)
        return 1
    print(f"ok: {len(steps)} facts, {receipts} receipts as expected", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--prefix", default="tl", help="the ledger's subject prefix")
    parser.add_argument("--publisher", default="dai-loc", help="the registered publisher id")
    parser.add_argument("--source", default="/bodies/dai-loc", help="the registered source URI")
    parser.add_argument("--official", default="o-1", help="a registered official")
    parser.add_argument("--unit", default="dai-loc-dai-an",
                        help="the nominating unit (inside the publisher's unit)")
    parser.add_argument("--run", default=f"r{int(time.time())}",
                        help="part of every id, so that a second run publishes new facts")
    parser.add_argument("--signing-key", default=None,
                        help="the publisher's ed25519 private key, 32 bytes hex (for --key)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for all receipts")
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
