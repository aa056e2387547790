"""A Jupyter Notebook 7 server of the tests' own: the same folder layout, environment and build of the sidebar
as ``lab.JupyterLab`` (Notebook 7 is made of JupyterLab's packages and loads the same prebuilt extensions),
with Notebook 7's pages: the file browser at ``/tree`` and one notebook per tab at ``/notebooks/NAME``."""

from __future__ import annotations

from typing import Any

from lab import JupyterLab, Notebook


class Notebook7(JupyterLab):
    """``with Notebook7(home, ancia_dirs) as server: ...``"""

    MODULE, APP_CLASS, NAME = "notebook", "JupyterNotebookApp", "Jupyter Notebook 7"

    def _environment(self) -> dict[str, str]:
        """Notebook 7 reads an extension's settings schemas (its menus, its shortcuts) from the first copy in the
        Jupyter path, where ``pip install`` left some earlier build: this checkout's comes first."""
        return {**super()._environment(), "JUPYTER_PATH": str(self.home / "jupyter" / "data")}

    def tree(self, path: str = "") -> str:
        """The URL of ``path`` (a notebook, opened in its own page; none: the file browser)."""
        where = f"/notebooks/{path}" if path else "/tree"
        return f"{self.url}{where}?token={self.token}"


def open_in_notebook7(page: Any, server: Notebook7, name: str) -> Notebook:
    """Open a notebook of ``server`` in ``page`` and wait until its kernel is idle."""
    return Notebook(page, server, name).open()
