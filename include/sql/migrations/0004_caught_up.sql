-- 0004_caught_up: a dealer whose extract failed in a run that a later run has already
-- superseded is never applied to that run: the later run's feed (a full snapshot) caught
-- up with its inventory. The load records that run here, so etl_run_dealers, the task log
-- and status.json agree on why the dealer's part of the older run stays unapplied.
ALTER TABLE etl_run_dealers ADD COLUMN caught_up_by VARCHAR(200);
