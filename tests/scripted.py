"""Scripted output for the real MLX runtime: logits processors that make it write a given text."""

from __future__ import annotations


def force_tokens(tokenizer, text: str):
    """A logits processor that makes the real runtime write ``text`` and then stop (scripted output)."""
    import mlx.core as mx

    ids = tokenizer.encode(text, add_special_tokens=False) + list(tokenizer.eos_token_ids)[:1]
    step = {"n": 0}

    def processor(tokens, logits):
        i = min(step["n"], len(ids) - 1)
        step["n"] += 1
        mask = mx.full(logits.shape, -1e9, dtype=logits.dtype)
        mask[..., ids[i]] = 0.0
        return logits + mask

    return processor


def script(tokenizer, *texts: str):
    """A logits processor that makes each generation write the next text, then stop.

    A new generation is recognised because the last token it sees is not the one forced a step before
    (it is the prompt's last token instead); after the last text, every generation just stops.
    """
    import mlx.core as mx

    eos = next(iter(tokenizer.eos_token_ids))
    scripts = [tokenizer.encode(t, add_special_tokens=False) + [eos] for t in texts] + [[eos]]
    state = {"round": -1, "pos": 0, "last": None}

    def processor(tokens, logits):
        if state["last"] is None or int(tokens[-1].item()) != state["last"]:
            state["round"], state["pos"] = state["round"] + 1, 0
        ids = scripts[min(state["round"], len(scripts) - 1)]
        token = ids[min(state["pos"], len(ids) - 1)]
        state["pos"] += 1
        state["last"] = token
        mask = mx.full(logits.shape, -1e9, dtype=logits.dtype)
        mask[..., token] = 0.0
        return logits + mask

    return processor
