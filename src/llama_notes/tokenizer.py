"""Meta's tokenizer interface over a Hugging Face tokenizer.

Meta's ``Tokenizer`` wraps SentencePiece with ``encode(s, bos, eos)``, ``decode(t)``
and the ids ``bos_id``, ``eos_id``, ``pad_id``, ``n_words``; ``generation.py`` uses
nothing else. This class gives any Hugging Face tokenizer that interface, so the
source post's ``generate`` runs unchanged on SmolLM2.
"""

from __future__ import annotations


class Tokenizer:
    """A Hugging Face tokenizer with Meta's interface.

    ``pad_id`` is -1, as in Meta's code, and never a real token: SmolLM2's own pad
    token *is* its end-of-sequence token, and a pad that is a real token would make
    ``generate`` take generated EOS tokens for padding.
    """

    pad_id = -1

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        self.n_words: int = len(hf_tokenizer)
        self.bos_id: int = hf_tokenizer.bos_token_id
        self.eos_id: int = hf_tokenizer.eos_token_id
        if self.eos_id is None:
            raise ValueError("the tokenizer has no end-of-sequence token, which generate needs")

    def encode(self, s: str, bos: bool, eos: bool) -> list[int]:
        """The token ids of ``s``, with ``bos_id`` in front and ``eos_id`` at the end if asked."""
        if not isinstance(s, str):
            raise TypeError(f"encode takes a str, got {type(s).__name__}")
        t = self.hf.encode(s, add_special_tokens=False)
        if bos:
            if self.bos_id is None:
                raise ValueError("this tokenizer has no beginning-of-sequence token")
            t = [self.bos_id] + t
        if eos:
            t = t + [self.eos_id]
        return t

    def decode(self, t: list[int], skip_special: bool = False) -> str:
        """The text of the token ids ``t``; ``skip_special`` leaves out the control tokens
        (BOS, the chat template's ``<|im_start|>``...), which are not text for a reader."""
        return self.hf.decode(t, skip_special_tokens=skip_special)

    def encode_dialog(self, dialog: list[dict[str, str]]) -> list[int]:
        """The prompt tokens of a chat, ``[{"role": ..., "content": ...}, ...]``, through the
        tokenizer's own chat template, ending with the assistant's turn to speak."""
        if not dialog:
            raise ValueError("a dialog needs at least one message")
        for message in dialog:
            if not isinstance(message, dict) or not {"role", "content"} <= message.keys():
                raise ValueError(f"each message is a dict with 'role' and 'content', got {message!r}")
        return list(self.hf.apply_chat_template(dialog, add_generation_prompt=True, tokenize=True, return_dict=False))
