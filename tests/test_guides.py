"""The guides' Python examples run as written, and print what the guides say they print.

Each guide runs in one namespace, block after block; a ```text block right after a ```python block is
that block's expected standard output.
"""

import contextlib
import io
import pathlib
import re

import pytest

GUIDES = sorted((pathlib.Path(__file__).resolve().parents[1] / "docs" / "guides").glob("*.md"))
BLOCK = re.compile(r"```(python|text)\n(.*?)```", flags=re.S)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_guide_examples_run(guide):
    blocks = BLOCK.findall(guide.read_text())
    assert any(kind == "python" for kind, _ in blocks), f"{guide.name} has no example"
    namespace: dict = {"__name__": f"guide_{guide.stem}"}
    printed = None
    for kind, body in blocks:
        if kind == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, str(guide), "exec"), namespace)  # noqa: S102 - our own guide
            printed = out.getvalue()
        else:
            assert printed is not None, f"{guide.name}: a text block before any example"
            assert printed.strip() == body.strip(), f"{guide.name}: printed {printed!r}"
            printed = None
