"""The runtime checker: `evallint run -- python train.py ...` and the pytest plugin.

It proves findings on the user's own model by running the user's own code with global
module-forward and optimizer-step hooks. This room stands apart from the linter: the core
never imports it, and only `recorder`, `measure` and `modes` import torch (in the child
process that runs the script, or inside pytest when the plugin is enabled). `cli`, `report`,
`netguard` and `bootstrap` import no torch at module level.
"""
