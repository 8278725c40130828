"""Keep pandas out of the pipeline's own processes.

pyarrow asks whether pandas is installed the first time it converts a Python object (importing
``pyarrow.dataset`` does), and imports it when it is: ~50 MiB and ~0.2 CPU s in every process,
for a pipeline that never touches pandas. pandas is installed with the development extras (the
README's reader snippets are tested with it), so a user's environment often has it.

``arrow_without_pandas`` lets pyarrow's probe find no pandas, then removes the block: pandas
stays importable, and pyarrow still imports it where it is really asked for (``to_pandas``,
``from_pandas``). Only the command (``flows/cli.py``) and its worker processes call it, never
a library import: in a process that later builds Arrow arrays *from pandas objects* without
calling ``to_pandas`` first, pyarrow would take a Series for a plain sequence.
"""

from __future__ import annotations

import sys


class _NoPandas:
    """A meta path finder refusing pandas (a finder's ImportError is what pyarrow's probe catches)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by this process")
        return None


def arrow_without_pandas() -> bool:
    """Settle pyarrow's pandas probe as "no pandas" in this process, unless pandas or
    ``pyarrow.dataset`` (whose import runs the probe) is already imported. Returns whether it did."""
    if "pandas" in sys.modules or "pyarrow.dataset" in sys.modules:
        return False
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        import pyarrow.dataset  # noqa: F401  (its import converts a Python scalar: the probe runs here)
    finally:
        sys.meta_path.remove(finder)
    return True
