"""The column-major vocabulary projection: same numbers as nn.Linear, used only where it pays."""

from __future__ import annotations

import torch
from torch import nn

from deception_core.model.cpu_head import MIN_VOCABULARY, ROW_MAJOR_FROM, ColumnMajorHead, use_column_major_head
from deception_core.testing.tiny_models import tiny_hf_model

WIDE = MIN_VOCABULARY + 8


def test_column_major_head_matches_linear_with_bias_on_3d_input():
    torch.manual_seed(0)
    linear = nn.Linear(16, 300, bias=True)
    head = nn.Linear(16, 300, bias=True)
    head.load_state_dict(linear.state_dict())
    head.__class__ = ColumnMajorHead
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(head(x), linear(x), rtol=1e-5, atol=1e-5)


def test_wide_cpu_head_is_swapped():
    model = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    assert use_column_major_head(model) is True


def test_swapped_head_keeps_its_state_dict_keys():
    model = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    before = set(model.state_dict())
    use_column_major_head(model)
    assert set(model.state_dict()) == before


def test_swapped_head_keeps_the_tied_embedding():
    model = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    use_column_major_head(model)
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) == tied


def test_narrow_head_is_left_alone():
    model = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=320)
    use_column_major_head(model)
    assert type(model.get_output_embeddings()) is nn.Linear


def test_swapped_model_gives_the_same_logits():
    plain = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    swapped = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    use_column_major_head(swapped)
    ids = torch.randint(2, WIDE, (4, 9))
    with torch.inference_mode():
        torch.testing.assert_close(swapped(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=1e-4, atol=1e-4)


def test_swapped_model_generates_the_same_greedy_tokens():
    plain = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    swapped = tiny_hf_model("gemma3", n_layers=2, d_model=32, vocab_size=WIDE)
    use_column_major_head(swapped)
    ids = torch.randint(2, WIDE, (3, 7))
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=1)
    with torch.inference_mode():
        assert swapped.generate(input_ids=ids, **kwargs).tolist() == plain.generate(input_ids=ids, **kwargs).tolist()


def _wide_head() -> tuple[nn.Linear, ColumnMajorHead]:
    torch.manual_seed(1)
    linear = nn.Linear(16, 300, bias=False)
    head = nn.Linear(16, 300, bias=False)
    head.load_state_dict(linear.state_dict())
    head.__class__ = ColumnMajorHead
    return linear, head


def test_few_rows_are_computed_column_major():
    _, head = _wide_head()
    assert head(torch.randn(2, 3, 16)).is_contiguous() is False


def test_many_rows_come_back_row_major():
    # per-row reductions over the vocabulary (log-softmax of teacher-forced rows) read a transposed
    # output across the grain, many times slower than the layout saves
    _, head = _wide_head()
    assert head(torch.randn(ROW_MAJOR_FROM + 1, 16)).is_contiguous() is True


def test_many_rows_match_linear():
    linear, head = _wide_head()
    x = torch.randn(5, ROW_MAJOR_FROM, 16)
    torch.testing.assert_close(head(x), linear(x), rtol=1e-5, atol=1e-5)
