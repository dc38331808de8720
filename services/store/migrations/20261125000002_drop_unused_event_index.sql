-- Reports read the read models, not the event table: the index on
-- effective_date only cost every append and every sequencing update.
DROP INDEX IF EXISTS events_by_effective_date;
