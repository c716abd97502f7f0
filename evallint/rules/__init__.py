"""Layer 3: judgements over the analysis' facts. RULES is the code registry."""

from __future__ import annotations

from evallint.diagnostics import PARSE_ERROR_CODE
from evallint.rules.base import Rule
from evallint.rules.evl001_eval_without_eval_mode import EvalWithoutEvalMode
from evallint.rules.evl002_eval_with_autograd import EvalWithAutograd
from evallint.rules.evl003_training_in_eval_mode import TrainingInEvalMode
from evallint.rules.evl004_functional_mode_ignored import FunctionalModeIgnored
from evallint.rules.evl005_inert_switch import InertSwitch
from evallint.rules.evl006_loss_accumulated_with_graph import LossAccumulatedWithGraph
from evallint.rules.evl007_training_on_evaluation_data import TrainingOnEvaluationData
from evallint.rules.evl008_gradients_never_cleared import GradientsNeverCleared
from evallint.rules.evl009_backward_without_graph import BackwardWithoutGraph

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
