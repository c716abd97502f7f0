"""Codes that are not analysis rules but are printed like them: EVL999 (a file that cannot be
read or parsed) and EVL100 (an unused suppression). `evallint explain` and SARIF describe
them from here; nothing in this module imports LibCST."""

from __future__ import annotations

import inspect
from typing import ClassVar

from evallint.diagnostics import PARSE_ERROR_CODE, UNUSED_SUPPRESSION_CODE


class ParseError:
    """## What it does
    Reports a file that evallint could not read, decode or parse: a syntax error, Python 2
    source, a binary file, a notebook that is not valid JSON, or code nested too deeply to
    analyse. It is evallint's counterpart of flake8's E999.

    ## Why is this bad?
    Nothing in the file was checked. A run that passed it silently would be green without
    having looked at it, so this code is reported whatever `select` and `ignore` say.

    ## Example
    ```python
    print "accuracy", acc
    ```

    ## Use instead
    ```python
    print("accuracy", acc)
    ```

    ## Known problems
    A file written for a newer Python than the one running evallint is parsed with LibCST,
    which reads newer syntax than CPython's parser of an older interpreter.

    ## Fix safety
    No fix: the file has to be repaired by hand.
    """

    code: ClassVar[str] = PARSE_ERROR_CODE
    name: ClassVar[str] = "unparsable-file"
    summary: ClassVar[str] = (
        "A file that cannot be read, decoded or parsed (nothing in it was checked)"
    )

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


class UnusedSuppression:
    """## What it does
    Reports a suppression comment that silences nothing: `# noqa: EVL001` or
    `# evallint: ignore[EVL001]` on a line with no EVL001 finding, or a bare
    `# evallint: ignore` on a line with no finding at all. It is opt-in, like ruff's RUF100:
    `--extend-select EVL100` or `extend-select = ["EVL100"]`. A bare `# noqa` is never
    reported (other linters read it too), nor are other tools' codes (`# noqa: E501`).

    ## Why is this bad?
    A suppression outlives the finding it was written for. Left in place, it silences the
    next real mistake on that line, and nobody reviews it.

    ## Example
    ```python
    model.eval()  # noqa: EVL001
    ```

    ## Use instead
    ```python
    model.eval()
    ```

    ## Known problems
    A suppression for a rule that is disabled in this configuration is not reported: it
    may matter under another configuration.

    ## Fix safety
    No automatic fix yet: delete the comment or the unused codes.
    """

    code: ClassVar[str] = UNUSED_SUPPRESSION_CODE
    name: ClassVar[str] = "unused-suppression"
    summary: ClassVar[str] = "A `# noqa` or `# evallint: ignore` comment that silences nothing"

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


PSEUDO_RULES = (UnusedSuppression, ParseError)
PSEUDO_RULES_BY_CODE = {rule.code: rule for rule in PSEUDO_RULES}
