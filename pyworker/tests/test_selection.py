"""The pure parts of serving a selection from a warm session."""
import sys

import pytest
from rpytest_worker import recollect, selection


@pytest.mark.parametrize("outer, inner, inside", [
    (("/p/tests", [], ""), ("/p/tests/a/test_x.py", [], ""), True),
    (("/p/tests", [], ""), ("/p/tests/a/test_x.py", ["T", "t"], ""), True),
    (("/p/tests/a", [], ""), ("/p/tests", [], ""), False),
    (("/p/test_x.py", ["t"], ""), ("/p/test_x.py", [], ""), False),
    (("/p/test_x.py", ["t"], ""), ("/p/test_x.py", ["t"], "[1]"), True),
    (("/p/test_x.py", ["t"], "[2]"), ("/p/test_x.py", ["t"], ""), False),
    (("/p/test_x.py", ["t"], "[2]"), ("/p/test_x.py", ["t"], "[2]"), True),
    (("/p/test_x.py", ["T"], ""), ("/p/test_x.py", ["T", "t"], ""), True),
    (("/p/test_x.py", [], ""), ("/p/test_x.pyc", [], ""), False),
])
def test_a_path_is_inside_what_was_collected_only_when_it_is(outer, inner, inside):
    assert selection._contains(outer, inner) is inside


def test_the_import_graph_resolves_relative_imports_and_names_parents():
    graph = recollect.ImportGraph()
    graph._note("pkg.sub.mod", "pkg.sub", "sibling", (), 1)
    graph._note("pkg.sub.mod", "pkg.sub", "", ("other",), 2)
    graph._note("tests.test_a", "tests", "pkg.core", (), 0)
    assert {"pkg.sub.sibling", "pkg.sub"} <= graph.edges["pkg.sub.mod"]
    assert "pkg" in graph.edges["pkg.sub.mod"]
    assert graph.edges["tests.test_a"] == {"pkg.core", "pkg"}
    assert graph.importers("pkg.core") == {"tests.test_a"}


def test_the_import_graph_records_who_first_loaded_a_module():
    graph = recollect.ImportGraph()
    graph.begin("/p/tests/test_a.py")
    sys.modules["rpytest_selection_probe"] = object()
    try:
        graph.leave()
    finally:
        del sys.modules["rpytest_selection_probe"]
    assert graph.owner["rpytest_selection_probe"] == "/p/tests/test_a.py"
