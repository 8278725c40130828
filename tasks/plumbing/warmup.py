"""Warm the cleaning stages' caches (rule matchers, language profiles) before the first shard.

The first shard a process cleans pays ~2-4 s of one-off set-up (compiling the boilerplate
rules, loading langdetect's profiles). When shards run in threads of the command's own
process, the command does it while the temporary API server is still starting, in parallel.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..config import Config

# A few lines of each kind the stages handle, in English: enough to build every stage.
_SAMPLE = (
    "Cookie settings\n\nHome | About | Contact\n\n"
    "The committee met on Tuesday to discuss the new budget for the library and agreed to extend "
    "its opening hours during the winter months.\n\nShare this article\n\n© 2026 Example News\n"
)


def warm_up(config: Config) -> None:
    """Clean one small document in a scratch folder; failures are ignored (the real run reports them)."""
    from ..stages.read import discover
    from ..corpus.shard import clean_shard

    scratch = Path(tempfile.mkdtemp(prefix="corpusclean-warmup-"))
    try:
        raw = scratch / "raw"
        raw.mkdir()
        (raw / "page.txt").write_text(_SAMPLE, encoding="utf-8")
        clean_shard(0, discover(raw), config, scratch / "staging")
    except Exception:
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
