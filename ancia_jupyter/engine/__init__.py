"""The engine: from a question to an answer's events.

``conversation`` is the service every front end asks through (send, regenerate, edit-and-resend, titling,
approvals, stop, following a chat); ``chat_engine`` checks and stores a request and starts its answer;
``answer`` is the handle and stream of one answer; ``answer_run`` writes it (generation rounds on the model
``worker``, tools between them); ``context_fit`` and ``prompt_caches`` keep prompts within the window and
cheap to extend; ``approvals`` holds tool calls waiting for a person.
"""
