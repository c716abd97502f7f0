"""Layer 3: judgements over the analysis' facts. RULES is the code registry."""

from __future__ import annotations

from evallint.rules.base import Rule
from evallint.rules.eval_grad import EvalWithAutograd
from evallint.rules.eval_mode import EvalWithoutEvalMode
from evallint.rules.train_mode import TrainingInEvalMode

RULES: tuple[type[Rule], ...] = (EvalWithoutEvalMode, EvalWithAutograd, TrainingInEvalMode)

PARSE_ERROR_CODE = "EVL999"

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
if len(RULES_BY_CODE) != len(RULES):
    raise RuntimeError("two rules share a code")

__all__ = ["PARSE_ERROR_CODE", "RULES", "RULES_BY_CODE", "Rule"]
