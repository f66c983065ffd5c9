"""Jupyter's rich display of Model, Run and Priors (slamjax/_display.py)."""

from html.parser import HTMLParser

import pytest

import slamjax as sj


class _Checker(HTMLParser):
    """Collects text and checks that every tag is closed in order."""

    VOID = {"br", "hr", "img", "meta"}

    def __init__(self):
        super().__init__()
        self.stack, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data):
        self.text.append(data)


def _text(fragment: str) -> str:
    checker = _Checker()
    checker.feed(fragment)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"
    return " ".join(checker.text)


@pytest.fixture(scope="module")
def run():
    ds = sj.datasets.simulate(n=60, p=5, k=1, seed=0)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]}, n_factors=2)
    return sj.sample(model, num_warmup=20, num_samples=40, num_chains=2, progress=False)


def test_model_shows_sizes_and_backend(run):
    text = _text(run.model._repr_html_())
    for fact in ("individuals (n) 60", "traits (p) 5", "factors (k) 2", run.model.backend, "id (60 levels)"):
        assert fact in text


def test_run_shows_settings_and_the_worst_h2(run):
    text = _text(run._repr_html_())
    table = run.summary(var_names=["h2"])
    assert "draws per chain 40 of 40" in text and "memory only" in text
    assert f"{table['r_hat'].max():.3f} ({table['r_hat'].idxmax()})" in text
    assert f"{table['ess_bulk'].min():.0f} ({table['ess_bulk'].idxmin()})" in text
    assert "slamjax Model" in text  # the model follows


def test_priors_show_every_field_with_its_meaning():
    text = _text(sj.Priors()._repr_html_())
    for name in ("tot_Eta_var", "Lambda", "B_F", "intercept_precision"):
        assert f"{name}:" in text
    assert "MGPS" in text


def test_text_is_escaped():
    from slamjax._display import _table

    assert "&lt;script&gt;" in _table("t", [("a", "<script>")])
