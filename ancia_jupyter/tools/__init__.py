"""Tools the model can call: the registry, the built-in tools, and how a call runs.

A tool's schema comes from its function's signature, type hints and docstring (``tool.py``, ``schema.py``);
every tool, built-in, plugin or the user's own, goes into one registry (``registry.py``) and runs the same
way (``calling.py``). The public face is ``ancia.tool`` and ``ancia.tools`` (``api_tools.py``). Importing this
package is cheap: nothing heavy (httpx, ddgs, readability) is imported here.
"""
