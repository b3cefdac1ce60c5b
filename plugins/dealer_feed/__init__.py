"""dealer-feed ETL: OpenTrack vehicle feeds into service-request changes in a SQL warehouse."""
