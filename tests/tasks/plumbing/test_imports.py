"""The command's processes keep pandas out, and pyarrow's pandas interop still works there."""

import subprocess
import sys

import pytest

_PROBE = """
import sys
import corpusclean.flows.cli  # the command's entry: settles pyarrow's pandas probe
import pyarrow as pa, pyarrow.dataset as ds
table = pa.table({"text": pa.array(["a", None, "b"])})
print("pandas" in sys.modules)
try:
    import pandas  # noqa: F401
except ImportError:
    print("absent")
else:
    print(type(table.to_pandas()).__name__)
"""


def test_the_command_does_not_import_pandas_and_to_pandas_still_works():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"  # building Arrow arrays and importing pyarrow.dataset did not import it
    assert out[1] in ("DataFrame", "absent")  # to_pandas imports it on demand


def test_a_process_that_imported_pandas_first_is_left_alone():
    pytest.importorskip("pandas")
    probe = (
        "import pandas as pd\n"
        "from corpusclean.tasks.plumbing.imports import arrow_without_pandas\n"
        "import pyarrow as pa\n"
        "print(arrow_without_pandas(), pa.array(pd.Series(['a', None])).null_count)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "1"]
