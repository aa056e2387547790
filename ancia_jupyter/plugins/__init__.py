"""Plugins: tools from a registry document, installed per user without pip (``manager.py``), loaded through
the same door as the built-in tools (``loading.py``). The public face is ``ancia.plugins`` (``api_plugins.py``).
"""
