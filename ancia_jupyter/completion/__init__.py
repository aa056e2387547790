"""Inline code completion: what the notebook, the cell and the kernel's live objects tell the model
(``prompt``, ``live_objects``), how a suggestion is cut to a line or a block (``shaping``), and the
service that streams one completion at a time, a newer request stopping the older (``service``)."""
