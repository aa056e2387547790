"""``%ancia agent on|off``: whether the assistant works in the notebook (the setting ``notebook_agent``).

A mixin of the magics (``MagicCommands``). On, the model may call ``notebook.cells``, ``notebook.insert_cell``
and ``notebook.run_code`` (``tools/notebook_tools.py``); each run asks first. Off, those tools are hidden from
the model and refused.
"""

from __future__ import annotations

from IPython.core.error import UsageError

from ..errors import AnciaError
from .lazy_api import api

ON = ("The assistant works in the notebook: it can read the cells, add cells, and run code in this kernel after "
      "you approve each run (notebook.cells, notebook.insert_cell, notebook.run_code). `%ancia agent off` stops it.")
OFF = "The assistant does not work in the notebook: `%ancia agent on` lets it read cells, add cells and run code."


class MagicAgent:
    """``%ancia agent [on | off]``."""

    def _agent(self, words: list[str]) -> None:
        if words and words[0] not in ("on", "off"):
            raise UsageError("Write %ancia agent on, or %ancia agent off.")
        try:
            settings = (api.settings.update(notebook_agent=words[0] == "on") if words
                        else api.settings.get())
            advice = api.models.tool_ability()["advice"] if settings["notebook_agent"] else None
        except AnciaError as exc:  # one line the user can act on, never a traceback
            raise UsageError(str(exc)) from None
        print(ON if settings["notebook_agent"] else OFF)
        if advice:  # the picked model cannot call tools: say which can
            print(advice)
