"""Metadata a person reads in the UI: real tables, rounded figures, plots as files."""

import math

import dagster as dg
import numpy as np

from curation_assets.defs.shared.metadata import (
    as_table,
    image,
    line_plot_png,
    rounded_floats,
    thinned,
)


def test_rows_become_a_typed_table_with_rounded_floats():
    rows = [
        {"rule": "near_duplicate", "dropped": 12, "rate": 0.9080459770114943, "ok": True},
        {"rule": "x" * 300, "dropped": np.int64(3), "rate": 1, "ok": None},
        {"rule": "nan_rate", "dropped": 0, "rate": math.nan, "ok": False},
    ]
    value = as_table(rows)
    assert isinstance(value, dg.TableMetadataValue)
    types = {c.name: c.type for c in value.schema.columns}
    assert types == {"rule": "string", "dropped": "int", "rate": "float", "ok": "bool"}
    records = [r.data for r in value.records]
    assert records[0]["rate"] == round(0.9080459770114943, 4)
    assert records[1]["rate"] == 1.0 and isinstance(records[1]["rate"], float)
    assert records[1]["dropped"] == 3 and len(records[1]["rule"]) <= 160
    assert records[2]["rate"] is None
    assert as_table([], "(none)").value == "(none)"


def test_plots_are_written_as_png_files_the_ui_links_to(tmp_path):
    png = line_plot_png([(0, 2.0), (10, 1.0), (20, 0.5)], "step", "loss", "Training loss")
    value = image(png, tmp_path / "reports" / "loss.png")
    assert isinstance(value, dg.PathMetadataValue)
    assert (tmp_path / "reports" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_thinned_keeps_the_ends_and_rounding_keeps_non_floats():
    rows = list(range(1000))
    kept = thinned(rows, 50)
    assert len(kept) == 50 and kept[0] == 0 and kept[-1] == 999
    assert thinned(rows[:10], 50) == rows[:10]
    out = rounded_floats({"acc": dg.MetadataValue.float(0.123456789), "n": 5, "f": 0.5555555})
    assert out["acc"].value == 0.1235 and out["n"] == 5 and out["f"].value == 0.5556
