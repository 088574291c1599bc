"""What a chapter of the book needs from its own run: numbers glued into its prose, and claims that are checked.

A chapter never types a number that its run produces. It glues the value where it computes it,

    glue("kl_share_near", share)          # in a code cell

and quotes it in its prose with myst-nb's role ``{glue:text}`kl_share_near:.1%``` (any Python format spec), so
the page can only say what its outputs show.

A claim about a *trained* network is made through :class:`Claims`, which asserts it (stopping the page, and the
build, when it fails), glues the measured value under the claim's name, and records it:

    claims = Claims(enabled=check_networks)
    claims.below("kl_w2_error", abs(w2_net - w2_exact), 0.25, "the kl network's W2 to the data is the exact one's")

Such claims hold at a chapter's default training budget, and for several seeds (``ci/seeds.py`` measures them at
seeds 0, 1 and 2): a page run with smaller parameters sets ``enabled=False``, and the claims are then measured and
glued but not asserted. Two environment variables serve ``ci/seeds.py``: ``UOTM_CLAIMS_LOG`` names a file to which
every claim is appended as one JSON line, and ``UOTM_CLAIMS_SOFT=1`` reports a failing claim without stopping the
page, so that one run measures all of a page's claims.

A share counted among a page's samples (samples flagged, samples in a cluster) is reported with its interval,
:func:`wilson`.

Checks of exact answers (solvers, identities, closed forms) stay plain ``assert`` statements with stated
tolerances: they hold on every machine up to rounding.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLAIMS_LOG_ENV = "UOTM_CLAIMS_LOG"
CLAIMS_SOFT_ENV = "UOTM_CLAIMS_SOFT"
RELATIONS = {"<": "below", ">": "above"}


def glue(name: str, value: Any) -> Any:
    """Glue ``value`` under ``name`` for the page's prose (myst-nb), without displaying it; return ``value``.

    Outside a Jupyter kernel, or where myst-nb is not installed, this only returns ``value``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a glue name must be a Python identifier such as 'kl_share', got {name!r}")
    try:
        from IPython import get_ipython
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    if get_ipython() is None:
        return value
    myst_glue(name, _plain(value), display=False)
    return value


def markdown_table(header: list[str], rows: list[list[Any]], formats: dict[int, str] | None = None) -> str:
    """A Markdown table: ``header`` names the columns, each row gives one value per column; ``formats`` maps a
    column's index to a format spec for its numbers (e.g. ``{1: ".3f", 2: ".1%"}``); other values print as given."""
    formats = formats or {}
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} values, one per column of {header}")

    def cell(k: int, value: Any) -> str:
        value = _plain(value)
        text = format(value, formats[k]) if k in formats and isinstance(value, (int, float)) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(k, v) for k, v in enumerate(row)) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header: list[str], rows: list[list[Any]], formats: dict[int, str] | None = None) -> None:
    """Display :func:`markdown_table` as a rendered table in the notebook (and the book's page); print it outside
    a notebook."""
    text = markdown_table(header, rows, formats)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def _plain(value: Any) -> Any:
    """numpy and torch scalars as Python numbers, so that a format spec such as ``:.3f`` applies to them."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    return value


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    r"""Wilson's score interval for a share: ``k`` of ``n`` samples counted (flagged, in a cluster), at the normal
    quantile ``z`` (1.96: 95%). With :math:`\hat p=k/n` it is

    .. math:: \frac{\hat p+\frac{z^2}{2n}\pm z\sqrt{\frac{\hat p(1-\hat p)}{n}+\frac{z^2}{4n^2}}}{1+\frac{z^2}{n}},

    the shares :math:`p` that a two-sided score test at level ``z`` does not reject (Wilson, 1927). Unlike the
    interval :math:`\hat p\pm z\sqrt{\hat p(1-\hat p)/n}` it does not collapse to a point at ``k = 0`` or
    ``k = n``, which is where a page's rare events (a few flagged samples among thousands) lie. Returns
    ``(low, high)``, clipped to [0, 1] against rounding."""
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be a whole number of samples, got {value!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1 (k counted among n samples), got k={k}, n={n}")
    if isinstance(z, bool) or not isinstance(z, numbers.Real) or not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive finite quantile such as 1.96 (95%), got {z!r}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Claim:
    """One claim about a trained network: ``value`` is ``relation`` (``<`` or ``>``) ``bound``."""

    name: str
    value: float
    relation: str
    bound: float
    holds: bool
    text: str
    enabled: bool


@dataclass
class Claims:
    """The claims a page makes about its trained networks.

    ``enabled``: assert them (a page run at the budget where the claims hold) or only measure and glue them (a
    smaller run, e.g. the CI parameters).
    """

    enabled: bool = True
    made: list[Claim] = field(default_factory=list)

    def below(self, name: str, value: float, bound: float, text: str = "") -> float:
        """Claim ``value < bound``; glue ``value`` as ``name``; return it."""
        return self._claim(name, value, "<", bound, text)

    def above(self, name: str, value: float, bound: float, text: str = "") -> float:
        """Claim ``value > bound``; glue ``value`` as ``name``; return it."""
        return self._claim(name, value, ">", bound, text)

    def _claim(self, name: str, value: float, relation: str, bound: float, text: str) -> float:
        if any(c.name == name for c in self.made):
            raise ValueError(f"the claim {name!r} was already made on this page: give each claim its own name")
        value, bound = float(_plain(value)), float(_plain(bound))
        if math.isnan(bound):
            raise ValueError(f"claim {name!r}: the bound is NaN; give a finite number")
        holds = value < bound if relation == "<" else value > bound  # False for a NaN value
        claim = Claim(name, value, relation, bound, bool(holds), text, bool(self.enabled))
        self.made.append(claim)
        glue(name, value)
        _log(claim)
        if self.enabled and not holds and os.environ.get(CLAIMS_SOFT_ENV) != "1":
            raise AssertionError(
                f"claim {name!r} does not hold: {value:.6g} is not {RELATIONS[relation]} {bound:.6g}"
                + (f" ({text})" if text else "")
                + "; the page's claims hold at its default parameters (run with check_networks = False otherwise)")
        return value

    def failed(self) -> list[Claim]:
        """The claims made so far that do not hold (whether or not they were asserted)."""
        return [c for c in self.made if not c.holds]


def _log(claim: Claim) -> None:
    path = os.environ.get(CLAIMS_LOG_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(claim)) + "\n")


def read_claims_log(path: str | os.PathLike) -> list[Claim]:
    """The claims recorded in a ``UOTM_CLAIMS_LOG`` file, in the order they were made."""
    claims = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            claims.append(Claim(**json.loads(line)))
    return claims
