from torchbend.tables import Table


def test_text_is_aligned_and_html_is_escaped():
    table = Table(["name", "value"], [["a", 1.23456], ["<b>", (3,)]], title="t")
    lines = str(table).splitlines()
    assert lines[0] == "t"
    assert lines[1].split() == ["name", "value"]
    assert lines[3].split() == ["a", "1.235"]
    assert lines[4].split() == ["<b>", "(3,)"]
    assert lines[3].index("1.235") == lines[1].index("value")
    html = table._repr_html_()
    assert "&lt;b&gt;" in html and "<caption>t</caption>" in html and len(table) == 2


def test_unique_rows_keeps_first_seen_order():
    from torchbend.tables import unique_rows

    assert unique_rows([["leaf", "a"], ["leaf", "b"], ["leaf", "a"], ["x", (1,)], ["x", (1,)]]) == [
        ["leaf", "a"],
        ["leaf", "b"],
        ["x", (1,)],
    ]


def test_activations_table_groups_by_scope_and_hides_non_tensors():
    import torch

    from torchbend.tables import activations_table
    from torchbend.tracing.record import ActivationInfo

    infos = [
        ActivationInfo("x", "placeholder", "x", (2, 3), torch.float32, "Tensor"),
        ActivationInfo("enc_conv", "call_module", "enc.conv", (2, 4), torch.float32, "Tensor"),
        ActivationInfo("size", "call_method", "size", None, None, "Size"),
        ActivationInfo("enc_relu", "call_module", "enc.relu", (2, 4), torch.float32, "Tensor"),
        ActivationInfo("add", "call_function", "add", (2, 4), torch.float32, "Tensor"),
    ]
    tree = activations_table({i.name: i for i in infos}, title="t")
    assert list(tree.groups) == ["(method)", "enc"]
    assert tree.names() == ["x", "add", "enc_conv", "enc_relu"]  # size is hidden
    assert "size" in activations_table({i.name: i for i in infos}, tensors_only=False).names()
    assert activations_table({i.name: i for i in infos}, pattern="enc_.*").names() == ["enc_conv", "enc_relu"]
    lines = str(tree).splitlines()
    assert (
        lines[0] == "t"
        and "enc/" in lines
        and lines[lines.index("enc/") + 1].split() == ["enc_conv", "(2,", "4)", "float32"]
    )
    page = tree._repr_html_()
    assert page.count("<details>") == 2 and "<summary><code>enc</code> (2)</summary>" in page


def test_a_recorded_scope_is_used_when_present():
    from types import SimpleNamespace

    from torchbend.tables import activations_table

    info = SimpleNamespace(
        name="add",
        op="call_function",
        target="add",
        shape=(1,),
        dtype=None,
        type="Tensor",
        is_tensor=True,
        scope="decoder.block",
    )
    assert list(activations_table({"add": info}).groups) == ["decoder.block"]
