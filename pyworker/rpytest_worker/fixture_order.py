"""pytest's fixture-scope ordering, worked out once per warm session.

Every run, pytest's fixture manager reorders the items so that the tests
sharing a module-, class- or session-scoped parametrized fixture run
together (``reorder_items``, from its ``pytest_collection_modifyitems``).
The order depends on nothing but the items, which a warm session keeps
from run to run, yet for 5,000 tests it costs a run some 70 ms: a tenth of
a warm run's wall.

So the checkpoint works it out while it idles, for the whole session, and
a run's fork takes it from there when the items it reorders (after the
run's selection and the plugins' own reordering) are the very same objects
in the very same order. Any other list is reordered by pytest itself, as
in a cold run: the answer is always the one pytest gives for that list.
"""
from .pytest_internals import fixture_reorder, set_fixture_reorder
from .spread import trace


class ReorderMemo:
    """Stands in for pytest's ``reorder_items`` (``pytest_internals.fixture_reorder``)."""

    def __init__(self, reorder):
        self.reorder = reorder
        self.known = None  # (the items, as a tuple; pytest's order for them)

    def __call__(self, items):
        known = self.known
        if known is not None and _same_objects(known[0], items):
            trace(f"fixture order of {len(items)} items: worked out while idle")
            return list(known[1])
        return self.reorder(items)

    def work_out(self, items):
        """Runs pytest's ordering for ``items`` and keeps it (the tuple keeps
        the items alive, so no other object can take one's place)."""
        items = tuple(items)
        self.known = (items, self.reorder(list(items)))


def _same_objects(known, items):
    return len(known) == len(items) and all(a is b for a, b in zip(known, items))


def install():
    """The memo, in the place pytest's fixture manager calls (once per
    process: a refreshed session installs nothing new)."""
    current = fixture_reorder()
    if isinstance(current, ReorderMemo):
        return current
    memo = ReorderMemo(current)
    set_fixture_reorder(memo)
    return memo
