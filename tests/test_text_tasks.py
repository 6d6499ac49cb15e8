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
