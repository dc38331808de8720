-- Facts of one stream from one body are decided in the order the body
-- published them (CONTRACT.md "Publishing facts"): a fact whose stream has
-- an earlier parked fact from the same source is parked behind it, and
-- parked facts are retried in the order they were first parked.
--
-- `stream` is the fact's own stream (`enrollment-…`, `official-…`); NULL
-- for a retraction and for facts parked before this column existed (they
-- hold nothing back). `park_order` is given once, when a fact is first
-- parked; parking it again keeps it.
ALTER TABLE parked_facts ADD COLUMN stream text, ADD COLUMN park_order bigint;
UPDATE parked_facts p SET park_order = o.n
FROM (SELECT source, id, row_number() OVER (ORDER BY parked_at, source, id) AS n
      FROM parked_facts) o
WHERE p.source = o.source AND p.id = o.id;
CREATE SEQUENCE parked_facts_park_order_seq OWNED BY parked_facts.park_order;
SELECT setval('parked_facts_park_order_seq', COALESCE(max(park_order), 0) + 1, false)
FROM parked_facts;
ALTER TABLE parked_facts
    ALTER COLUMN park_order SET DEFAULT nextval('parked_facts_park_order_seq'),
    ALTER COLUMN park_order SET NOT NULL;
CREATE UNIQUE INDEX parked_facts_in_order ON parked_facts (park_order);
CREATE INDEX parked_facts_by_stream ON parked_facts (source, stream, park_order)
    WHERE stream IS NOT NULL;
