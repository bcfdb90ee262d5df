"""ADePT and ULPT behaviour (docs/methods/adept.md, docs/methods/ulpt.md): ADePT starts as PT and its offset
follows the token, not the position; ULPT's frozen projection is rebuilt from its seed, which the record and the
artifact carry, so ``bench eval`` reproduces a run exactly."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.artifact_file import PROMPT_KEY
from bench.cli import main
from bench.results import record_path
from bench.run.artifacts import load_artifact
from bench.run.reeval import reevaluate
from bench.spec import RunSpec
from methods.ulpt import random_projection
from tests.test_artifacts_eval import run_worker, train_for
from tests.test_methods_train import EXAMPLES, _build


def test_adept_starts_as_pt_and_a_is_kaiming_uniform(tiny_t5_dir):
    backbone, method = _build(tiny_t5_dir, "adept", rank="4")
    embeds = backbone.embed_ids(backbone.encode(EXAMPLES, ["0", "1"]).batch(slice(None))["input_ids"])
    method.train(True)  # dropout on: the offset is still exactly zero while B and b are zero
    assert torch.equal(method.update_embeds(embeds), embeds)
    bound = 1 / math.sqrt(4)
    top = float(method.ffn_down.detach().abs().max())
    assert 0.8 * bound < top <= bound
    assert not method.ffn_down_bias.any() and not method.ffn_up.any() and not method.ffn_up_bias.any()


def test_adept_offset_follows_the_token_not_the_position(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "adept", rank="4")
    with torch.no_grad():
        for p in method.ffn_params():
            p.normal_(generator=torch.Generator().manual_seed(3))
    method.train(False)
    embeds = torch.randn(2, 7, method.dims.hidden_size, generator=torch.Generator().manual_seed(4))
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(5))
    out = method.update_embeds(embeds)
    assert not torch.allclose(out, embeds)
    assert torch.allclose(method.update_embeds(embeds[:, perm]), out[:, perm], atol=1e-6)
    assert torch.equal(method.update_embeds(embeds[:, :3]), method.update_embeds(embeds)[:, :3])
    # Dropout only while training.
    assert torch.equal(method.update_embeds(embeds), out)
    method.train(True)
    assert not torch.equal(method.update_embeds(embeds), out)


def test_ulpt_projection_is_frozen_seeded_and_not_saved_as_a_parameter(tiny_t5_dir):
    _, method = _build(tiny_t5_dir, "ulpt", num_tokens="5")  # _build seeds the generator with 0
    d = method.dims.hidden_size
    assert method.seed == 0 and method.record() == {"projection_seed": 0}
    assert torch.equal(method.projection, random_projection(2, d, 0))
    assert not torch.equal(random_projection(2, d, 0), random_projection(2, d, 1))
    limit = math.sqrt(6 / (2 + d))
    top = float(method.projection.abs().max())
    assert 0.8 * limit < top <= limit
    assert "projection" not in method.state_dict()
    assert all(p is not method.projection for p in method.parameters())
    assert set(method.state_dict()) == {"latent", "scale", "shift"}
    # A config seed wins over the run's.
    _, fixed = _build(tiny_t5_dir, "ulpt", num_tokens="5", projection_seed="7")
    assert fixed.seed == 7 and torch.equal(fixed.projection, random_projection(2, d, 7))


def test_ulpt_saved_state_rebuilds_the_prompt_exactly(tiny_t5_dir):
    _, trained = _build(tiny_t5_dir, "ulpt", num_tokens="5", projection_seed="11")
    with torch.no_grad():
        trained.latent.add_(0.5)
        trained.scale.mul_(1.5)
    state = trained.saved_state()
    assert int(state["projection_seed"]) == 11
    _, other = _build(tiny_t5_dir, "ulpt", num_tokens="5", projection_seed="12")
    assert not torch.equal(other.prompt(None, None), trained.prompt(None, None))
    other.load_saved_state(state)
    assert other.seed == 11 and torch.equal(other.prompt(None, None), trained.prompt(None, None))
    with pytest.raises(KeyError):
        other.load_saved_state({k: v for k, v in state.items() if k != "projection_seed"})


@pytest.mark.parametrize("method", ["adept", "ulpt", "smop", "mept"])
def test_bench_eval_reproduces_the_run_exactly(method, tiny_bert_dir, make_spec, tmp_path):
    # MEPT: the tiny BERT has 2 layers, fewer than the quick preset's 4
    config = {"layers": "all"} if method == "mept" else None
    spec = make_spec(tiny_bert_dir, train=train_for(tiny_bert_dir), method=method, method_config=config)
    out = tmp_path / "results"
    record = run_worker(spec, out)
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["test"]
    reproduced = reevaluate(record, out)
    assert reproduced["test"] == record["metrics"]["test"] and reproduced["dev"] == record["metrics"]["dev"]
    assert main(["eval", spec.run_id, "--out", str(out)]) == 0
    if method in ("smop", "mept"):  # the router's load over the training forwards: k shares summing to 1
        load = record["method_record"]["router_load"]
        assert (
            load["experts"] == (2 if method == "mept" else 4)
            and load["rows"] > 0
            and sum(load["share"]) == pytest.approx(1.0)
        )
    if method != "ulpt":
        return
    assert record["method_record"]["projection_seed"] == 42  # the run's seed
    # The artifact's seed rebuilds P̃: loaded into a backbone built with another seed, the prompt is the run's.
    artifact = out / record["artifact"]
    tensors = load_file(str(artifact))
    assert int(tensors["method.projection_seed"]) == 42
    from bench.worker import build, prepare_data

    other = RunSpec.from_dict({**record["spec"], "seed": 5})
    train = other.train_config()
    task, *_ = prepare_data(other, train)
    backbone, built = build(other, task, train)
    assert built.seed == 5
    load_artifact(artifact, backbone)
    assert built.seed == 42 and torch.equal(built.prompt(None, None), tensors[PROMPT_KEY])
    # A wrong seed in the artifact gives another prompt; a missing one fails to load.
    save_file({**tensors, "method.projection_seed": torch.tensor(43)}, str(artifact))
    load_artifact(artifact, backbone)
    assert not torch.equal(built.prompt(None, None), tensors[PROMPT_KEY])
    save_file({k: v for k, v in tensors.items() if k != "method.projection_seed"}, str(artifact))
    assert main(["eval", spec.run_id, "--out", str(out)]) == 1
    assert record_path(out, spec).exists()
