"""uotm: generative modelling through the semi-dual of unbalanced optimal transport."""

from .losses import JKOStep, SemiDual, quadratic_cost, r1_penalty, source_gradient_penalty
from .psi import PSI_NAMES, PsiConjugate, get_psi

__all__ = [
    "PSI_NAMES", "PsiConjugate", "get_psi",
    "quadratic_cost", "SemiDual", "JKOStep", "r1_penalty", "source_gradient_penalty",
]
__version__ = "0.1.0"
