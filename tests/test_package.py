"""Package-level rules: jaxlinear never imports torch; the public names exist."""

import subprocess
import sys

import jaxlinear as jl


def test_importing_jaxlinear_never_imports_torch():
    code = (
        "import sys, jaxlinear, jaxlinear.interop, jaxlinear.nn, jaxlinear.optim;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'delu', 'unit_scaling',"
        " 'inferno', 'gromo', 'mup', 'torchao'}); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_names_exist():
    for name in jl.__all__:
        assert hasattr(jl, name), name
