"""corpusclean: raw scraped text in, a clean, deduplicated Parquet corpus out (a Prefect pipeline).

The code lives where the project's design card puts it, in ``tasks/`` (the stages) and ``flows/``
(the wiring and the command), and is installed and imported under this one name:
``corpusclean.tasks`` and ``corpusclean.flows`` (pyproject.toml maps the folders), so another
project's own ``tasks``/``flows`` packages never collide with ours. ``python -m corpusclean``
is the ``corpusclean`` command.
"""

import os as _os
from pathlib import Path as _Path

# One BLAS thread per process, unless the user says otherwise. Our matrix products are small
# (a batch's lines x ~40 features), so extra OpenBLAS threads only spin: with two workers on two
# cores each worker's BLAS threads took CPU from the other (a third more process CPU in the
# boilerplate stage), and the thread count could change a product's summation order from one
# machine to the next. Set before numpy loads OpenBLAS; worker processes inherit it.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Arrow's buffers go through the C library's malloc, not its bundled mimalloc: we allocate little
# through Arrow (a batch's staged tables: ~10 MB at most in a worker), but mimalloc's reserved
# segments and per-thread heaps kept ~35 MB more resident per worker process, at no speed gain
# (measured: peak RSS of a worker cleaning four shards 529 MB against 565). Set before pyarrow
# loads; worker processes inherit it, and a user's own setting wins.
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# From a source tree (an editable install, or PYTHONPATH pointing at a checkout) the two folders
# sit beside this one: let ``corpusclean.tasks`` resolve to the checkout's own ``tasks/`` rather
# than to whichever tree the editable install points at. An installed wheel has them inside.
_here = _Path(__file__).resolve().parent
if not (_here / "tasks").is_dir() and (_here.parent / "tasks" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 (a package's __path__)
del _os, _Path, _here
