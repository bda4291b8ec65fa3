"""``docs/figures.py`` runs and writes every figure (not a pixel comparison)."""

import importlib.util
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures.py"


def test_figures_script_writes_every_figure(tmp_path):
    spec = importlib.util.spec_from_file_location("jaxlinear_docs_figures", SCRIPT)
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    assert figures.main(["--out", str(tmp_path)]) == 0
    for name in figures.FIGURES:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name}.png is not a PNG"
    # every checked-in figure is one the script draws (none is orphaned)
    checked_in = {p.stem for p in (SCRIPT.parent / "figures").glob("*.png")}
    assert checked_in <= set(figures.FIGURES)
