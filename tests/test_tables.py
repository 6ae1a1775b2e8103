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
