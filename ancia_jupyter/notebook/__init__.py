"""The notebook front ends, thin views of the engine's answers.

``magics`` (``%ancia``/``%%ancia``, with ``magic_commands``, ``magic_line``, ``interpolate`` and
``cell_errors``) and ``display`` show answers in cell output; ``widget`` is the in-notebook chat panel (an
anywidget whose front end is built from ``static/`` into ``bundle/``); ``comm`` is the JupyterLab sidebar's
kernel end; both talk to a ``panel_session`` (the panel controller: ``panel_actions`` and ``panel_state``);
``extension`` is what ``%load_ext ancia_jupyter`` does.
"""
