"""Tiny random models built from configs, with a byte-level BPE tokenizer trained in-process.

Nothing here downloads anything. `save_tiny_model` writes a directory that ``--model`` accepts,
so tests exercise the same loading path as real local models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

CORPUS = [
    "I will not go lower than sixty points. This is my final offer.",
    "My minimum is thirty points, so I can accept forty.",
    "We can finish the project in twelve days. Deal or no deal?",
    "The car has a small oil leak but runs well; the price is 9000 dollars.",
    "I promise to cooperate. Let us both choose COOPERATE.",
    "Yes, we are still allies, I will vote with you.",
    "Negotiator: I propose a 60/40 split. Counterpart: I accept.",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(chat_template: bool = False) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        pad_token="<pad>", unk_token="<|endoftext|>",
    )
    if chat_template:
        hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def tiny_hf_model(arch: str = "llama", n_layers: int = 4, d_model: int = 64, vocab_size: int = 320,
                  seed: int = 0) -> PreTrainedModel:
    import torch
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, GPT2Config, LlamaConfig, PretrainedConfig

    torch.manual_seed(seed)
    config: PretrainedConfig
    if arch == "llama":
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=d_model, intermediate_size=2 * d_model,
                             num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=1024, bos_token_id=0, eos_token_id=0, pad_token_id=1)
    elif arch == "gemma3":
        config = Gemma3TextConfig(vocab_size=vocab_size, hidden_size=d_model, intermediate_size=2 * d_model,
                                  num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=1,
                                  head_dim=16, max_position_embeddings=1024, sliding_window=64,
                                  bos_token_id=0, eos_token_id=0, pad_token_id=1)
    elif arch == "gpt2":
        config = GPT2Config(vocab_size=vocab_size, n_positions=1024, n_embd=d_model, n_layer=n_layers, n_head=4,
                            bos_token_id=0, eos_token_id=0, pad_token_id=1)
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}")
    model: PreTrainedModel = AutoModelForCausalLM.from_config(config).eval()
    return model


def save_tiny_model(directory: str | Path, arch: str = "llama", chat_template: bool = False, **kwargs: int) -> Path:
    directory = Path(directory)
    tiny_hf_model(arch, **kwargs).save_pretrained(directory)
    tiny_tokenizer(chat_template).save_pretrained(directory)
    return directory


def byte_tokenizer(chat_template: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with no merges: every byte is one token, so any text whose bytes are
    whole characters tokenises back to exactly the ids it was decoded from."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|endoftext|>": 0, "<pad>": 1, **{char: 2 + i for i, char in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>", "<pad>"])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     pad_token="<pad>", unk_token="<|endoftext|>")
    if chat_template:
        hf_tok.chat_template = CHAT_TEMPLATE
    return hf_tok


def save_byte_model(directory: str | Path, arch: str = "llama", chat_template: bool = False,
                    do_sample: bool = False, **kwargs: int) -> Path:
    """A tiny random model over `byte_tokenizer` that writes printable ASCII only.

    Its generation config suppresses every token but the printable ASCII bytes and the end of
    sequence, so its replies always decode to text that tokenises back to the same ids: a server
    that returns text only (``transformers serve``) then gives the exact reply ids.
    ``do_sample``: the generation config's default (a server samples only when it is set)."""
    from transformers import GenerationConfig

    directory = Path(directory)
    tokenizer = byte_tokenizer(chat_template)
    model = tiny_hf_model(arch, vocab_size=len(tokenizer), **kwargs)
    printable = {tokenizer.convert_tokens_to_ids(tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(chr(b))[0][0])
                 for b in range(0x20, 0x7F)}
    allowed = printable | {int(tokenizer.eos_token_id)}
    model.generation_config = GenerationConfig(
        bos_token_id=0, eos_token_id=0, pad_token_id=1, do_sample=do_sample,
        suppress_tokens=[i for i in range(len(tokenizer)) if i not in allowed])
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
