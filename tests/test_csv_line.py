"""The CSV exports' own line writer writes what csv.writer writes (default dialect, CRLF)."""

from __future__ import annotations

import csv
import io

from hypothesis import example, given
from hypothesis import strategies as st

from auditor.exports import csv_line

# The characters quoting turns on, among ordinary ones: every mix of them is drawn often.
_CELLS = st.text(alphabet=st.sampled_from([",", '"', "\r", "\n", " ", "a", "=", "é", "\x00", "\t", ";"])) | st.text()


@given(st.lists(_CELLS, min_size=1, max_size=6))
@example([""])
@example(["", ""])
@example(['"'])
@example(["a,b", "c"])
def test_the_line_csv_writer_writes(cells: list[str]) -> None:
    written = io.StringIO()
    csv.writer(written, lineterminator="\r\n").writerow(cells)
    assert csv_line(cells) == written.getvalue()
