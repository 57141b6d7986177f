"""The bench scripts' shared JSON writer."""

from __future__ import annotations

import json

from vidm_rt.bench import write_report


def test_write_report_puts_machine_and_date_first_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "results" / "run.json"
    write_report(path, 2, {"engine": "export/x", "rows": [1, 2]})
    report = json.loads(path.read_text())
    assert list(report) == ["machine", "date", "engine", "rows"]
    assert report["machine"]["threads"] == 2 and report["rows"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
