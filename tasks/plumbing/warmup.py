"""Warm the cleaning stages' caches (rule matchers, language profiles) before the first shard.

The first shard a process cleans pays ~2-4 s of one-off set-up (compiling the boilerplate
rules, loading langdetect's profiles). When shards run in threads of the command's own
process, the command does it while the temporary API server is still starting, in parallel;
worker processes started before the flow (``flows.pool``) do it in their initializer.
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

# One page per language with a rule pack (a document is matched against the pack of its own
# language, each pack list built once per process), one without a language (every pack), and
# text outside Latin-1 and outside the BMP (the dedup normaliser builds its tables on first use).
_PAGES = {
    "fr": "Accueil | Contact\n\nLe conseil municipal a voté mardi soir le budget de la ville pour "
          "l'année prochaine, avec une hausse des dépenses pour les écoles et les transports.\n\n"
          "Il a aussi décidé de prolonger les horaires de la bibliothèque pendant tout l'hiver.\n",
    "de": "Startseite | Kontakt\n\nDer Gemeinderat hat am Dienstag den Haushalt der Stadt für das "
          "nächste Jahr beschlossen, mit mehr Geld für die Schulen und den Nahverkehr.\n\n"
          "Die Bibliothek ist im Winter auch am Abend und an den Wochenenden geöffnet.\n",
    "es": "Inicio | Contacto\n\nEl ayuntamiento aprobó el martes el presupuesto de la ciudad para el "
          "año que viene, con más dinero para las escuelas y para el transporte público.\n\n"
          "La biblioteca también abrirá por la tarde y los fines de semana durante el invierno.\n",
    "none": "Menu\n\nLogin\n\nΑρχική σελίδα — “Новости” 🙂\n\n© 2026\n",
}


def warm_up(config: Config) -> None:
    """Clean a few small documents in a scratch folder; failures are ignored (the real run reports them)."""
    from ..stages.read import discover
    from ..corpus.shard import clean_shard

    scratch = Path(tempfile.mkdtemp(prefix="corpusclean-warmup-"))
    try:
        raw = scratch / "raw"
        raw.mkdir()
        (raw / "page.txt").write_text(_SAMPLE, encoding="utf-8")
        for name, text in _PAGES.items():
            (raw / f"page-{name}.txt").write_text(text, encoding="utf-8")
        clean_shard(0, discover(raw), config, scratch / "staging")
    except Exception:
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def warm_worker(config: Config) -> None:
    """In a pool worker started before the flow: import what its first task unpickles and runs
    (Prefect's task engine, the task wrappers), then warm the stages."""
    try:
        import prefect.task_engine  # noqa: F401
        from .. import prefect_tasks  # noqa: F401
        # The first task run in a process looks up a block class, which first loads every
        # installed Prefect collection (prefect-dask imports dask: ~0.3 CPU s): done here instead,
        # before the flow submits, not between a shard's submission and its start.
        from prefect._internal.plugins.collections import load_prefect_collections

        load_prefect_collections()
    except Exception:
        pass
    warm_up(config)
    # The boilerplate stage's compiled kernels (numba, LLVM: ~0.8 CPU s per process, which the
    # warm-up's small pages never reach) load in the background: while the worker waits for its
    # first shard, not inside that shard's stage (which waits for them if it comes first).
    try:
        from ..stages.boilerplate import warm_compiled_in_background

        warm_compiled_in_background(config.boilerplate)
    except Exception:
        pass
