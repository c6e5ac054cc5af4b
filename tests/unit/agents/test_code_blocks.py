"""Fenced code-block extraction."""

from __future__ import annotations

from agent_client.code_blocks import extract_code_blocks


def test_blocks_in_order_with_canonical_languages() -> None:
    text = (
        "Plan first.\n```py\nx = 1\n```\nthen\n```sh\necho hi\n```\n"
        "```javascript\nconsole.log(1)\n```\n```Python3\nprint(x)\n```\n"
    )
    blocks = extract_code_blocks(text)
    assert [(b.language, b.code) for b in blocks] == [
        ("python", "x = 1\n"),
        ("bash", "echo hi\n"),
        ("python", "print(x)\n"),
    ]


def test_unlabelled_blocks_are_skipped_unless_defaulted() -> None:
    text = "```\nprint(1)\n```"
    assert extract_code_blocks(text) == []
    blocks = extract_code_blocks(text, default_language="python")
    assert [b.code for b in blocks] == ["print(1)\n"]


def test_configurable_languages_and_longer_fences() -> None:
    text = "````python\ns = '''\n```bash\nnot a block\n```\n'''\n````\n```bash\nls\n```"
    python_only = extract_code_blocks(text, ["python"])
    assert len(python_only) == 1
    assert "not a block" in python_only[0].code
    assert [b.language for b in extract_code_blocks(text, ["bash"])] == ["bash"]


def test_empty_blocks_and_prose_give_nothing() -> None:
    assert extract_code_blocks("no code here") == []
    assert extract_code_blocks("```python\n\n```") == []
