"""The corpus on disk: a shard through the stages (``shard``), duplicates across the run and the
committed corpus (``corpus_dedup``, ``dedup_index``), Parquet parts (``output``), the manifest and
input planning (``corpus_state``), the lock and commit (``runs``), the report (``report``,
``report_html``) and ``explain``."""
