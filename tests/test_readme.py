"""The README's claims that a test can check: its Python snippets run as written (training shortened)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_snippets():
    assert snippets()


@pytest.mark.parametrize("index", range(len(snippets())))
def test_every_python_snippet_in_the_readme_runs(index, data_root, tmp_path, monkeypatch):
    code = snippets()[index]
    # the only change: minutes-long training becomes a few steps (the calls and their arguments stay)
    short = re.sub(r"steps=\d+", "steps=3", code)
    short = re.sub(r"eval_every=\d+", "eval_every=3", short)
    monkeypatch.chdir(tmp_path)  # the snippet's checkpoint paths land here, not in the repository
    (tmp_path / "models").symlink_to(README.parent / "models")  # the shipped models, as from the repository root
    from drawviz import data, likelihood

    # a snippet may register a dataset or a likelihood: the registries are as they were for the next test
    monkeypatch.setattr(data, "REGISTRY", dict(data.REGISTRY))
    monkeypatch.setattr(likelihood, "LIKELIHOODS", dict(likelihood.LIKELIHOODS))
    exec(compile(short, f"README.md snippet {index + 1}", "exec"), {"__name__": "readme"})
