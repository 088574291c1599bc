"""The built book opened in a real browser (headless Chromium, driven by Playwright), at 1280 and 800 px.

Every page of _build/html fails the test on: an exception banner or a traceback, an image that does not load, an
element wider than the text column or cut off on the right (at 1280 px nothing may even scroll sideways; at 800 px
an element may scroll inside itself), a figure shown below 2/3 of its size at 1280 px (its text too small), a
Markdown table printed raw in an output, a warning printed in an output, or an unresolved reference. A screenshot of the top of each page is saved under
_build/screenshots/ for review.

UOTM_BOOK_HTML=FOLDER tests another built site instead, e.g. the one page that ``ci/execute.py NAME --html``
renders (_build/pages/NAME/_build/html). Skipped when the book has not been built (``make book``) or when no Chromium is found; ``.ci/run`` installs
Chromium and sets UOTM_REQUIRE_BROWSER=1, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("UOTM_BOOK_HTML", ROOT / "_build" / "html"))  # another site: e.g. one page's
SHOTS = ROOT / "_build" / "screenshots"
WIDTHS = (1280, 800)
FULL_WIDTH = 1280  # nothing may scroll sideways at this width
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _pages() -> list[Path]:
    if not HTML.is_dir():
        return []
    skip = {"genindex.html", "search.html"}
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts
                  and p.name not in skip)


def _chromium() -> str | None:
    for name in (os.environ.get("UOTM_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


# In the page (a JavaScript function run by Playwright): the elements that reach past the right edge of the text
# column; those cut off by an ancestor that hides its overflow; the elements that scroll sideways; the images that
# did not load; what the outputs print; unresolved references. An element inside a sideways scroller is not "wide":
# the reader can scroll to it.
INSPECT = r"""() => {
  const article = document.querySelector('.bd-article') || document.body;
  const column = [...article.children].find(c => c.tagName === 'SECTION') || article;
  const right = column.getBoundingClientRect().right + 1;
  // a sideways scroller (3 px of slack: MathJax rounds its widths)
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
    && el.scrollWidth > el.clientWidth + 3;
  const describe = (el, by) => `${el.tagName.toLowerCase()}.${String(el.className).split(' ')[0]} (${by} px)`;
  const wide = [], clipped = [], scrollers = [];
  for (const el of article.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || el.closest('mjx-assistive-mml')) continue;  // MathJax's hidden copy
    if (scrolls(el)) scrollers.push(describe(el, el.scrollWidth - el.clientWidth));
    let up = el.parentElement, inScroller = false, clip = null;
    while (up && up !== article) {
      if (scrolls(up)) { inScroller = true; break; }
      const style = getComputedStyle(up).overflowX;
      if ((style === 'hidden' || style === 'clip') && box.right > up.getBoundingClientRect().right + 1) clip = up;
      up = up.parentElement;
    }
    if (inScroller) continue;
    if (clip) clipped.push(describe(el, Math.round(box.right - clip.getBoundingClientRect().right)));
    else if (box.right > right) wide.push(describe(el, Math.round(box.right - right)));
  }
  const images = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
  const shrunk = [...article.querySelectorAll('.cell_output img')]
    .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
    .map(i => [i.naturalWidth, Math.round(i.getBoundingClientRect().width)]);
  const outputs = [...document.querySelectorAll('.cell_output')].map(o => o.innerText);
  const stderr = [...document.querySelectorAll('.cell_output .stderr, .cell_output .output.stderr')].length;
  const unresolved = [...article.querySelectorAll('span.xref, .pending_xref')]
    .filter(x => !x.closest('a')).map(x => x.textContent);
  return {wide, clipped, scrollers, images, shrunk, outputs, stderr, unresolved, text: article.innerText};
}"""

RAW_TABLE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", flags=re.M)
WARNING = re.compile(r"\b\w*Warning\b|^\s*warnings\.warn|^WARNING\b", flags=re.M)
ERROR = re.compile(r"Traceback \(most recent call last\)|An Exception was encountered|\b\w+Error: ")


MIN_FIGURE_SCALE = 2 / 3  # a figure shown smaller than this (at 1280 px) has text too small to read


def problems(found: dict, full_width: bool = True) -> list[str]:
    """What is wrong with one page, from what INSPECT found in it. At the full width (1280 px) everything must fit
    the column and every figure be shown at 2/3 of its size or more (notebooks/matplotlibrc sets the fonts for
    that); at a narrower width an element may scroll sideways inside itself and figures shrink with the page."""
    bad = []
    small = [f"{natural} px shown at {shown} px" for natural, shown in found.get("shrunk", [])
             if shown < MIN_FIGURE_SCALE * natural]
    if full_width and small:
        bad.append(f"{len(small)} figure(s) shrunk below 2/3 of their size, their text too small to read "
                   f"(make them at most 10 in wide at 100 dpi, or stack the panels): {small[:3]}")
    if found["wide"]:
        bad.append(f"{len(found['wide'])} element(s) wider than the text column, e.g. {found['wide'][:3]}")
    if found["clipped"]:
        bad.append(f"{len(found['clipped'])} element(s) cut off on the right, e.g. {found['clipped'][:3]}")
    if found["scrollers"] and full_width:
        bad.append(f"{len(found['scrollers'])} element(s) too wide for the column (they scroll sideways), "
                   f"e.g. {found['scrollers'][:3]}")
    if found["images"]:
        bad.append(f"images that do not load: {found['images'][:3]}")
    for text in found["outputs"]:
        if RAW_TABLE.search(text):
            bad.append(f"a Markdown table printed raw in an output: {text.strip()[:120]!r}")
        if WARNING.search(text):
            bad.append(f"a warning printed in an output: {WARNING.search(text).group(0)!r} in {text.strip()[:160]!r}")
    if found["stderr"]:
        bad.append(f"{found['stderr']} output(s) written to stderr")
    if ERROR.search(found["text"]):
        bad.append(f"an exception on the page: {ERROR.search(found['text']).group(0)!r}")
    if found["unresolved"] or re.search(r"\(\?\?\)|\?\?\?", found["text"]):
        bad.append(f"unresolved references: {found['unresolved'][:5] or '(??)'}")
    return bad


def test_problems_are_found():
    """The checks themselves can fail: each fault, planted in what a page reports, is named."""
    clean = {"wide": [], "clipped": [], "scrollers": [], "images": [], "shrunk": [[900, 688]], "outputs": ["W2 0.41"],
             "stderr": 0, "unresolved": [], "text": "fine"}
    assert problems(clean) == []
    narrow = dict(clean, scrollers=["mjx-container.MathJax (9 px)"], shrunk=[[1490, 688]])
    assert problems(narrow, full_width=False) == []
    faults = [dict(clean, wide=["table.table (212 px)"]), dict(clean, clipped=["mjx-math.x (15 px)"]),
              dict(clean, scrollers=["mjx-container.MathJax (9 px)"]), dict(clean, images=["file:///x.png"]),
              dict(clean, shrunk=[[1490, 688]]),
              dict(clean, outputs=["| a | b |\n|---|---|\n| 1 | 2 |"]),
              dict(clean, outputs=["TqdmWarning: IProgress not found"]), dict(clean, stderr=1),
              dict(clean, text="Traceback (most recent call last):"), dict(clean, text="see equation (??)"),
              dict(clean, unresolved=["eq-missing"])]
    for fault in faults:
        assert len(problems(fault)) == 1, fault


@pytest.fixture(scope="module")
def browser():
    pages = _pages()
    if not pages:
        pytest.skip("the book has not been built (make book, or make book PARAMS=ci)")
    exe = _chromium()
    required = os.environ.get("UOTM_REQUIRE_BROWSER") == "1"
    if exe is None:
        if required:
            pytest.fail("no Chromium found (apt-get install chromium); UOTM_REQUIRE_BROWSER=1 requires one")
        pytest.skip("no Chromium found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is not installed: pip install -e '.[test]'")
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_path", _pages(), ids=lambda p: str(p.relative_to(HTML)))
def test_page_in_a_browser(browser, page_path, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_timeout(500)  # MathJax typesets after load
        page.wait_for_function("() => !window.MathJax || !MathJax.startup || MathJax.startup.promise", timeout=20000)
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        found = page.evaluate(INSPECT)
        page.screenshot(path=str(SHOTS / f"{page_path.stem}-{width}.png"))
    finally:
        page.close()
    bad = problems(found, full_width=width >= FULL_WIDTH)
    assert not bad, f"{page_path.relative_to(HTML)} at {width} px:\n  " + "\n  ".join(bad)
