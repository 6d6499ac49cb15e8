"""Text tasks: arithmetic's difficulty knob and held-out split; GSM8K, MATH and JSONL files."""

from __future__ import annotations

import json

import pytest

from rlsft.envs.text import make_task
from rlsft.envs.verifiers import make_verifier
from rlsft.errors import RLSFTError


def test_arithmetic_split_is_disjoint_deterministic_and_verifiable() -> None:
    task = make_task("arithmetic", {"digits": 2, "operations": ["+", "-", "*"], "train_size": 500, "test_size": 100})
    train, test = task.examples("train"), task.examples("test")
    assert (len(train), len(test)) == (500, 100)
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert train == make_task("arithmetic", {"digits": 2, "operations": ["+", "-", "*"], "train_size": 500,
                                             "test_size": 100}).examples("train")  # fmt: skip
    a, symbol, b = test[0].prompt.removeprefix("What is ").removesuffix("?").split()
    assert test[0].answer == str(eval(f"{a} {symbol} {b}"))  # noqa: S307 - two literal integers
    verdicts = make_verifier("exact_numeric", {})(
        [f"The sum is {e.answer}." for e in test[:5]], [e.answer for e in test[:5]]
    )
    assert all(v.success for v in verdicts)


def test_difficulty_knob_sets_operand_digits() -> None:
    for digits in (1, 3):
        examples = make_task("arithmetic", {"digits": digits, "train_size": 50}).examples("train")
        operands = [int(x) for e in examples for x in e.prompt[8:-1].split(" + ")]
        assert max(operands) < 10**digits and (digits == 1 or min(operands) >= 10 ** (digits - 1))


def test_gsm8k_math_and_jsonl_files(tmp_path) -> None:
    gsm8k = tmp_path / "gsm8k_{split}.jsonl"
    (tmp_path / "gsm8k_test.jsonl").write_text(
        json.dumps({"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
                    "answer": "In May she sold 48/2 = <<48/2=24>>24.\n#### 72"}) + "\n"
    )  # fmt: skip
    [example] = make_task("gsm8k", {"path": str(gsm8k)}).examples("test")
    assert example.answer.endswith("#### 72")
    assert make_verifier("exact_numeric", {})(["#### 72"], [example.answer])[0].success
    (tmp_path / "math.jsonl").write_text(
        json.dumps({"problem": "1/2 + 1/2?", "solution": "It is $\\boxed{1}$."}) + "\n"
    )
    [problem] = make_task("math", {"path": str(tmp_path / "math.jsonl")}).examples("train")
    assert problem.answer == "It is $\\boxed{1}$."
    (tmp_path / "own.jsonl").write_text('{"q": "2+2?", "a": "4"}\n\n{"q": "3+3?", "a": "6"}\n')
    own = make_task("jsonl", {"path": str(tmp_path / "own.jsonl"), "prompt_key": "q", "answer_key": "a"})
    assert [e.answer for e in own.examples("train")] == ["4", "6"]


def test_bad_task_input_is_explained(tmp_path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "1+1?", "answer": "2"}\n{"prompt": oops}\n')
    with pytest.raises(RLSFTError, match="line 2 is not JSON"):
        make_task("jsonl", {"path": str(tmp_path / "bad.jsonl")}).examples("train")
    with pytest.raises(RLSFTError, match="does not exist"):
        make_task("gsm8k", {"path": str(tmp_path / "none.jsonl")}).examples("train")
    with pytest.raises(RLSFTError, match="Unknown text task 'arithmatic'"):
        make_task("arithmatic", {})
    with pytest.raises(RLSFTError, match="operations from"):
        make_task("arithmetic", {"operations": ["/"]})


def test_every_record_is_checked_and_the_first_bad_one_named(tmp_path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    good = json.dumps({"question": "1+1?", "answer": "#### 2"})
    path.write_text(f"{good}\n\n{good}\n{json.dumps({'answer': '#### 3'})}\n[1, 2]\n")
    with pytest.raises(RLSFTError, match=r"gsm8k.jsonl line 4 lacks the field 'question'; fix that record, or name"):
        make_task("gsm8k", {"path": str(path)}).examples("train")
    path.write_text(f"{good}\n[1, 2]\n")
    with pytest.raises(RLSFTError, match="line 2 lacks the field 'question'"):
        make_task("gsm8k", {"path": str(path)}).examples("train")
    path.write_text("\n")
    with pytest.raises(RLSFTError, match="holds no records"):
        make_task("gsm8k", {"path": str(path)}).examples("train")


def test_a_curated_file_is_checked_record_by_record(tmp_path) -> None:
    from transformers import AutoTokenizer

    from rlsft.data.text import curated_completions
    from rlsft.pretrained.tiny_lm import SHIPPED

    path = tmp_path / "s1k.jsonl"
    records = [{"question": "1+1?", "attempt": "2"}, {"question": "2+2?", "attempt": "4"}, {"question": "3+3?"}]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED)
    with pytest.raises(RLSFTError, match="line 3 lacks the field 'attempt'; fix that record, or set data_format"):
        curated_completions(str(path), "question", "attempt", tokenizer)  # one completion field, not a list
    path.write_text("".join(json.dumps(record) + "\n" for record in records[:2]))
    assert len(curated_completions(str(path), "question", "attempt", tokenizer)) == 2


def test_bad_splits_and_sizes_are_explained() -> None:
    with pytest.raises(RLSFTError, match="A text task has the splits \\['train', 'test'\\], not 'validation'"):
        make_task("arithmetic", {}).examples("validation")
    with pytest.raises(RLSFTError, match="train_size and test_size >= 1 and 0 < test_fraction < 1"):
        make_task("arithmetic", {"test_fraction": 0.0})


def test_unreadable_gold_answers_are_reported_once_at_load(tmp_path) -> None:
    from rlsft.cli import compose_config
    from rlsft.experiments.text import checked_examples

    path = tmp_path / "gsm8k.jsonl"
    answers = ["#### 2", "#### inf", "#### 4", "no number here"]
    path.write_text("".join(json.dumps({"question": f"q{i}", "answer": a}) + "\n" for i, a in enumerate(answers)))
    cfg = compose_config("train", ["env=gsm8k", f"env.task.options.path={path}"])
    with pytest.warns(RuntimeWarning) as caught:
        examples = checked_examples(cfg, make_verifier("exact_numeric", {}), "train")
    assert len(examples) == 4 and len(caught) == 1
    message = str(caught[0].message)
    assert "2 of the 4 gold answers of gsm8k's train split cannot be read by the exact_numeric verifier" in message
    assert "indices [1, 3]" in message and "example 1, is '#### inf': it holds no number" in message


def tiny_sampler(verifier):
    """A sampler of the shipped tiny model, scoring with `verifier`: short completions, fast."""
    from rlsft.envs.generation import make_generator
    from rlsft.envs.text.sampling import TextSampler
    from rlsft.policies.causal_lm import CausalLMPolicy
    from rlsft.pretrained.tiny_lm import SHIPPED

    policy = CausalLMPolicy.from_config(str(SHIPPED))
    return TextSampler(make_generator("transformers", policy), policy.tokenizer, verifier, max_new_tokens=4)


def test_sampled_completions_are_made_again_when_the_task_data_change(tmp_path) -> None:
    """Fixing a task file's answers must not reuse the completions scored against the old ones."""
    import torch

    from rlsft.data.text import Sampling, sampled_completions
    from rlsft.envs.text import TextExample

    sampler = tiny_sampler(make_verifier("user_callable", {"function": "operator:contains"}))  # answer in completion
    cache = (Sampling(2, 1.0, 0), {"model": "tiny"}, tmp_path, "task", torch.device("cpu"))
    prompts = ["What is 1 + 1?", "What is 2 + 3?"]
    scored = sampled_completions(sampler, [TextExample(p, "") for p in prompts], *cache)  # "" is in every one
    assert scored["reward"].tolist() == [1.0] * 4
    fixed = sampled_completions(sampler, [TextExample(p, "\x00never") for p in prompts], *cache)
    assert fixed["reward"].tolist() == [0.0] * 4 and len(list(tmp_path.iterdir())) == 2


def test_runs_sampling_the_same_completions_at_once_share_one_copy(tmp_path) -> None:
    """Two runs that both found no cache: the one that finishes second keeps the first's copy, not an error."""
    import torch

    from rlsft.data.text import Sampling, sampled_completions
    from rlsft.envs.text import TextExample
    from rlsft.envs.verifiers.exact_numeric import ExactNumeric

    examples = [TextExample("What is 1 + 1?", "2"), TextExample("What is 2 + 3?", "5")]
    cache = (Sampling(2, 1.0, 0), {"model": "tiny"}, tmp_path, "task", torch.device("cpu"))
    other_run = tiny_sampler(ExactNumeric())

    class OtherRunFinishesFirst(ExactNumeric):
        """Scores as exact_numeric, once the other run has cached the same completions."""

        def __call__(self, completions: list[str], answers: list[str]) -> list:
            self.first = sampled_completions(other_run, examples, *cache)
            return super().__call__(completions, answers)

    verifier = OtherRunFinishesFirst()
    second = sampled_completions(tiny_sampler(verifier), examples, *cache)
    assert [path.name for path in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # one folder, no leftover
    assert (second == verifier.first).all()


def test_a_parquet_task_file_is_read(tmp_path) -> None:
    import pyarrow
    import pyarrow.parquet

    records = [{"question": "1+1?", "answer": "#### 2"}, {"question": "2+3?", "answer": "#### 5"}]
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(records), tmp_path / "gsm8k_train.parquet")
    task = make_task("gsm8k", {"path": str(tmp_path / "gsm8k_{split}.parquet")})
    assert [(e.prompt, e.answer) for e in task.examples("train")] == [("1+1?", "#### 2"), ("2+3?", "#### 5")]


def test_task_paths_with_other_braces_and_non_utf8_files(tmp_path) -> None:
    folder = tmp_path / "runs{v2}"
    folder.mkdir()
    (folder / "own_train.jsonl").write_text('{"prompt": "2+2?", "answer": "4"}\n')
    task = make_task("jsonl", {"path": str(folder / "own_{split}.jsonl")})
    assert [e.answer for e in task.examples("train")] == ["4"]  # only {split} is replaced
    latin1 = '{"prompt": "2+2?", "answer": "4"}\n{"prompt": "café?", "answer": "1"}\n'.encode("latin-1")
    (folder / "own_test.jsonl").write_bytes(latin1)  # é is byte 16 of line 2
    with pytest.raises(RLSFTError, match=r"own_test.jsonl line 2 is not UTF-8 \(its byte 16\); save the file as UTF-8"):
        task.examples("test")


def test_a_task_file_without_split_warns_that_it_is_held_out_too(tmp_path) -> None:
    import warnings

    (tmp_path / "own.jsonl").write_text('{"prompt": "2+2?", "answer": "4"}\n')
    (tmp_path / "own_test.jsonl").write_text('{"prompt": "3+3?", "answer": "6"}\n')
    one_file = make_task("jsonl", {"path": str(tmp_path / "own.jsonl")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_file.examples("train")  # training on it is what the file is for
        make_task("jsonl", {"path": str(tmp_path / "own_{split}.jsonl")}).examples("test")
    with pytest.warns(RuntimeWarning, match=r"own.jsonl has no \{split\}, so the test split is the train split"):
        one_file.examples("test")
