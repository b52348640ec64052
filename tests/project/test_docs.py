"""The Sphinx documentation builds without a single warning (warnings are errors)."""

from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parents[2] / "docs"


# Sphinx's and MyST's own deprecation notices about their internals; not the docs' warnings.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_docs_build_without_warnings(tmp_path, capsys):
    out = tmp_path / "html"
    status = build_main(["-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)])
    captured = capsys.readouterr()
    assert status == 0, f"sphinx-build failed:\n{captured.err}"
    assert (out / "index.html").is_file()
    api = out / "api.html"
    assert api.is_file()
    assert "NMMRegressor" in api.read_text(encoding="utf-8")
