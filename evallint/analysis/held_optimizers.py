"""What a function's optimizer steps train, when every step it takes says so.

A backward pass puts gradients on every module its loss ran through, but only the modules
an optimizer then steps are trained. A function whose every `step()` names the modules it
updates (an optimizer built over `self.discriminator.parameters()`, or one the network holds
itself: `self.discriminator.optimizer.step()` when its constructor set `self.optimizer =
Adam(self.parameters())`; a GAN's generator and discriminator, an actor and a critic each
holding one) trains those modules only: a loss whose graph also runs through another network
(a gradient penalty on generated samples that were not detached) leaves that network's
gradients to be cleared by its own step elsewhere; it is not trained there, whatever its mode.

A held optimizer is told by the shape of the step's receiver: an attribute of an expression
that names a module the analysis tracks. A step whose modules cannot be told (a parameter
`optimizer`, a trainer object's) leaves the answer to the rest of the analysis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

from evallint.analysis.regions import training_call_kind
from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.context import InterpreterContext
    from evallint.analysis.lattice import PathState


def holder_of_step(interp: InterpreterContext, call: cst.Call, state: PathState) -> Optional[str]:
    """`net.optimizer.step()`: the module `net` that holds the stepped optimizer."""
    func = call.func
    if type(func) is not cst.Attribute or type(func.value) is not cst.Attribute:
        return None
    receiver = func.value
    if interp.resolve(receiver, state) is not None:
        return None  # the receiver is a module itself
    return interp.resolve(receiver.value, state)


def stepped_owners(
    interp: InterpreterContext,
    scope: cst.CSTNode,
    state: PathState,
    known: Callable[[cst.Call], Optional[frozenset]],
) -> Optional[frozenset]:
    """The modules the scope's optimizer steps update (nested functions left out), if every
    step names them (`known` gives what the analysis tells from the optimizer's
    construction); None when one does not, or the scope steps nothing."""
    owners: set[str] = set()
    for node in iter_nodes(scope):
        if type(node) is not cst.Call or training_call_kind(node, interp.imports) != "step":
            continue
        found = known(node)
        if found is None:
            holder = holder_of_step(interp, node, state)
            if holder is None:
                return None
            found = frozenset({holder})
        # what the optimizer was built over, by its module key (`probe = model` earlier)
        owners |= {interp.resolve_path(name, state) or name for name in found}
    return frozenset(owners) or None


def within_owners(sources: frozenset, owners: frozenset) -> frozenset:
    """Of the modules a loss reached, those the steps update: each stepped module and its
    parts; a module holding a stepped one (`self` for `self.discriminator`) stands for it."""
    kept = {
        key for key in sources for owner in owners if key == owner or key.startswith(owner + ".")
    }
    kept |= {owner for owner in owners for key in sources if owner.startswith(key + ".")}
    return frozenset(kept)
