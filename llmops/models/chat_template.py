"""The reference model's special tokens and chat template, in one place.

The same Jinja template is stored in the tokenizer (so ``tokenizer.apply_chat_template`` and vLLM's
``/v1/chat/completions`` use it) *and* used here to render the pretraining corpus, so the model is
pretrained on exactly the byte layout it will be prompted with. Rendering mirrors what transformers
does (an immutable sandboxed Jinja environment with ``trim_blocks``/``lstrip_blocks``, special tokens
passed as variables), so :func:`render_chat` and ``apply_chat_template`` give identical strings.

Layout of a conversation (every turn, the assistant's included, ends with ``<|eos|>``, so greedy
generation after ``<|assistant|>`` stops by itself)::

    <|bos|><|system|>
    You are ...<|eos|>
    <|user|>
    My order ...<|eos|>
    <|assistant|>
    Sorry to hear ...<|eos|>
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from jinja2 import Template
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
#: Order fixes the ids: pad=0, bos=1, eos=2, system=3, user=4, assistant=5.
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, *ROLE_TOKENS.values())

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unsupported role: ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _raise(message: str) -> None:
    raise TemplateError(message)


@functools.cache
def _compiled() -> Template:
    """Compiling costs ~5 ms; the corpus renders thousands of conversations, so compile once."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(CHAT_TEMPLATE)


def render_chat(messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False) -> str:
    """Render ``messages`` exactly as ``tokenizer.apply_chat_template(..., tokenize=False)`` would."""
    return _compiled().render(
        messages=[dict(m) for m in messages],
        add_generation_prompt=add_generation_prompt,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
    )
