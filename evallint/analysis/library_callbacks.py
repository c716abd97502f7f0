"""Functions the module's own code hands to a library by name (issue 16).

`interact(draw, width=slider)`, `button.on_click(show_prediction)`, `gr.Interface(fn=predict)`:
a function of this file that nobody here calls, given by name to a callable that is not a
function of this file, at the module's top level. The library calls it back later, after
the module's code ran, like a decorated callback (`@app.route`): an evaluation in it of a
module global is judged in the state the module's code left that global in (see
judging.judged_after_module). A function given to one of this file's functions is followed
at that function's call instead (passed_functions.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from evallint.analysis.walk import iter_nodes

if TYPE_CHECKING:
    from evallint.analysis.file_analysis import FileAnalysis


def handed_to_libraries(file: FileAnalysis) -> frozenset[str]:
    """Names of the file's top-level functions passed by name to a call, at the module's
    top level, of something that is not a function of this file."""
    found: set[str] = set()
    functions = file.functions
    for node in iter_nodes(file.module):
        if type(node) is not cst.Call:
            continue
        func = node.func
        if type(func) is cst.Name and func.value in functions:
            continue
        for arg in node.args:
            value = arg.value
            if arg.star or type(value) is not cst.Name or value.value not in functions:
                continue
            found.add(value.value)
    return frozenset(found)
