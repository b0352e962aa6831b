"""The brief in a real browser (headless Chromium): charts drawn, no console error, no request, and the
hostile markup of posts shown as text, not run."""

from __future__ import annotations

from pathlib import Path

from pipeline.brief.render import render
from tests.browser import open_brief
from tests.unit.brief_sample import sample_data


def test_the_brief_renders_inert_and_offline(tmp_path: Path) -> None:
    page = tmp_path / "brief.html"
    page.write_text(render(sample_data()), encoding="utf-8")
    seen = open_brief(page)
    assert seen.svg_with_shapes == 3
    assert seen.console == []
    assert seen.requests == []
    assert seen.scripts == 0
    assert seen.title == "Ringkasan mingguan Pantau Banten"  # the injected script would have changed it
    assert '<script>document.title="pwned"</script>' in seen.text  # shown as text
    assert "onerror=" in seen.text


def test_the_checks_would_see_markup_that_ran(tmp_path: Path) -> None:
    """The test above can fail: without the escaping and the policy, a script runs and an image is fetched,
    and the same checks see both."""
    from pipeline.brief.render import CSP

    html = render(sample_data()).replace(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', "")
    page = tmp_path / "bad.html"
    page.write_text(
        html.replace(
            "</main>", '<img src="http://127.0.0.1:9/x.png"><script>document.title="pwned"</script></main>'
        ),
        encoding="utf-8",
    )
    seen = open_brief(page)
    assert seen.title == "pwned"
    assert "http://127.0.0.1:9/x.png" in seen.requests
    assert seen.console  # the failed image load
