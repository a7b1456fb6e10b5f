"""Acceptance audit of issues 11 and 12 (checklist: /work/coord/audit_11_12.md): the gaps the audit
found, each through the installed console script with its exact expected output (tables on an
80-column pseudo-terminal)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from terminal import on_terminal, run  # noqa: E402


# issue 12, deliverable 6: "the same input given twice is an error naming both" -- also when one
# of the two is a key of a --values file (the command line used to win silently; fixed on main by 6781bf4).
def test_an_input_in_values_file_and_on_the_command_line_is_an_error(tmp_path):
    values = tmp_path / "v.json"
    values.write_text('{"b": 1, "c": 3}')
    r = run("eval", "b", "--values", str(values), "b=2")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: input 'b' is given twice: in --values {values} and as b=2; give it once\n"
    r = run("eval", "b", "--values", str(values), "--set", "b=2", "--json")
    assert (r.returncode, r.stdout) == (2, "")
    assert json.loads(r.stderr) == {
        "error": {
            "kind": "value",
            "message": f"input 'b' is given twice: in --values {values} and as b=2; give it once",
            "line": None,
            "column": None,
        }
    }
    # a key the program does not use is still skipped with a note, and other inputs combine
    r = run("eval", "b + d", "--values", str(values), "d=2")
    assert (r.returncode, r.stdout) == (0, "value\t3.0\n")
    assert r.stderr == f"note: --values '{values}': skipped 'c', not an input of the program\n"


def test_the_same_input_from_stdin_values_and_the_command_line_is_an_error():
    r = run("eval", "b", "--values", "-", "b=2", input='{"b": 1}')
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "error: input 'b' is given twice: in --values - and as b=2; give it once\n"


# issue 12, deliverable 4: "names and grad_fn never truncated before values ... fits 80 columns".
# A long tensor name made the names table wider than the terminal and rich cut grad_fn off.
def test_a_long_name_folds_instead_of_cutting_grad_fn_at_80_columns():
    code, text = on_terminal(
        "backward", "a_really_long_intermediate_name = exp(x); loss = log(a_really_long_intermediate_name)", "x=1"
    )
    assert code == 0
    assert (
        text
        == """\
backward: a_really_long_intermediate_name = exp(x); loss = log(a_really_long_in…
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━┓
┃ name                        ┃ shape ┃ requires_grad ┃ is_leaf ┃ grad_fn      ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━┩
│ x                           │ ()    │ True          │ True    │ None         │
├─────────────────────────────┼───────┼───────────────┼─────────┼──────────────┤
│ a_really_long_intermediate_ │ ()    │ True          │ False   │ ExpBackward0 │
│ name                        │       │               │         │              │
├─────────────────────────────┼───────┼───────────────┼─────────┼──────────────┤
│ loss                        │ ()    │ True          │ False   │ LogBackward0 │
└─────────────────────────────┴───────┴───────────────┴─────────┴──────────────┘
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━┳━━━━━━━━┓
┃ name                            ┃ shape ┃ value   ┃ grad   ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━╇━━━━━━━━┩
│ x                               │ ()    │ 1.0     │ 1.0    │
│ a_really_long_intermediate_name │ ()    │ 2.71828 │ None ¹ │
│ loss                            │ ()    │ 1.0     │ None ¹ │
└─────────────────────────────────┴───────┴─────────┴────────┘
¹ a_really_long_intermediate_name and loss are not leaves: PyTorch warns that 
the .grad of a non-leaf tensor is not populated during backward() (it reads 
None); add --retain-grad a_really_long_intermediate_name,loss to keep them 
(a_really_long_intermediate_name.retain_grad())
"""
    )
    assert all(len(line) <= 80 for line in text.splitlines())


# issue 12, deliverable 5: "exit codes ... in gradcli --help" -- every cause of exit 1 (--strict,
# --detect-anomaly, and --each's "exit 1 if any line failed", SPEC §3), within 80 columns.
def test_help_lists_every_cause_of_exit_1():
    r = run("--help")
    assert r.returncode == 0
    assert (
        "\n    1    the answer is a failure: check found a mismatch, --strict or\n"
        "         --detect-anomaly saw a NaN or infinity, a --each line failed\n"
    ) in r.stdout
    assert max(map(len, r.stdout.splitlines())) <= 80
    r = run("grad", "x*2", "--each", "-", input='{"x": 1}\n{"x": [1, 2}\n')
    assert r.returncode == 1 and r.stdout.splitlines()[0] == (
        '{"program":"x*2","value":2.0,"shape":[],"dtype":"float64","grad_fn":"MulBackward0","grads":{"x":2.0}}'
    )
    assert json.loads(r.stdout.splitlines()[1])["error"]["kind"] == "value"
