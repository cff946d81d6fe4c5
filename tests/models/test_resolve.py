import pytest

from seapo.errors import ModelNotFoundError
from seapo.models import resolve_model
from seapo.models.resolve import ACCEPTED_FORMS, dequantize_gguf, embedded_gguf_path


def test_embedded_resolves_to_a_plain_unquantized_folder(embedded_model):
    import json

    resolved = resolve_model("embedded")
    assert resolved.kind == "embedded" and resolved.path == str(embedded_model)
    config = json.loads((embedded_model / "config.json").read_text())
    assert "quantization_config" not in config  # TRL refuses quantized models
    assert (embedded_model / "tokenizer.json").is_file()
    # Reused, not rebuilt: the same folder comes back at once.
    assert resolve_model("embedded").path == resolved.path


def test_embedded_weights_match_the_gguf_and_generate(embedded_model):
    """The dequantized folder holds exactly the GGUF's tensors (dequantized independently here with
    the gguf package's own reader), and the model it makes answers sensibly."""
    import gguf
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reader = gguf.GGUFReader(str(embedded_gguf_path()))
    tensors = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}
    saved = load_file(str(embedded_model / "model.safetensors"))
    # Embeddings, norms and MLP weights are stored unpermuted in GGUF (attention Q/K are permuted).
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    for layer in (0, 15, 29):
        for ours, theirs in (("attn_norm", "input_layernorm"), ("ffn_down", "mlp.down_proj"),
                             ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("attn_v", "self_attn.v_proj"),
                             ("attn_output", "self_attn.o_proj")):
            names[f"blk.{layer}.{ours}.weight"] = f"model.layers.{layer}.{theirs}.weight"
    for gguf_name, hf_name in names.items():
        assert np.array_equal(saved[hf_name].numpy(), tensors[gguf_name].reshape(saved[hf_name].shape)), hf_name
    assert len(saved) == len(reader.tensors)

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])


def test_local_folder_and_gguf_file(tiny_model, embedded_model):
    assert resolve_model(str(tiny_model)).kind == "folder"
    gguf = embedded_gguf_path()
    resolved = resolve_model(str(gguf))
    assert resolved.kind == "gguf"
    assert resolved.path == str(dequantize_gguf(gguf))  # cached by file identity


def test_hub_ids_are_passed_through_and_bad_paths_name_the_accepted_forms(tmp_path):
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct").kind == "hub"
    for bad in ("./no/such/model", str(tmp_path / "missing.gguf"), "a/b/c", "bad id with spaces"):
        with pytest.raises(ModelNotFoundError) as err:
            resolve_model(bad)
        assert ACCEPTED_FORMS in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_unknown_hub_id_offline_gives_the_same_clear_error(monkeypatch):
    import huggingface_hub.constants

    from seapo.models import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable once, at import: set its flag too, or the test waits
    # on network timeouts instead of failing fast the way an offline user's run does.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="Accepted"):
        load_tokenizer("seapo-test/definitely-not-a-model")
