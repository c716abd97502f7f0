"""Layer 3: judgements over the analysis' facts. RULES is the code registry."""

from __future__ import annotations

from evallint.diagnostics import PARSE_ERROR_CODE
from evallint.rules.backward_no_grad import BackwardWithoutGraph
from evallint.rules.base import Rule
from evallint.rules.eval_data_training import TrainingOnEvaluationData
from evallint.rules.eval_grad import EvalWithAutograd
from evallint.rules.eval_mode import EvalWithoutEvalMode
from evallint.rules.functional_dropout import FunctionalModeIgnored
from evallint.rules.graph_accumulation import LossAccumulatedWithGraph
from evallint.rules.inert_switch import InertSwitch
from evallint.rules.train_mode import TrainingInEvalMode
from evallint.rules.zero_grad import GradientsNeverCleared

RULES: tuple[type[Rule], ...] = (
    EvalWithoutEvalMode,
    EvalWithAutograd,
    TrainingInEvalMode,
    FunctionalModeIgnored,
    InertSwitch,
    LossAccumulatedWithGraph,
    TrainingOnEvaluationData,
    GradientsNeverCleared,
    BackwardWithoutGraph,
)

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in RULES}
if len(RULES_BY_CODE) != len(RULES):
    raise RuntimeError("two rules share a code")

__all__ = ["PARSE_ERROR_CODE", "RULES", "RULES_BY_CODE", "Rule"]
