"""What plugins write at the end of a run: pytest-cov's table, pytest-html's
"Generated html report" line, a conftest's ``pytest_terminal_summary``.

The engine renders pytest's own terminal summary. Plugins' summary hooks
still run in the process where the session ends, the zygote, as pytest runs
them: after every other ``pytest_sessionfinish``, handed pytest's terminal
reporter, whose ``stats`` hold the run's reports and whose writer fills a
buffer. The engine prints that text where pytest would: after the junit
line, before the durations and the short test summary.
"""
import inspect
import io

import pytest

from . import protocol, pytest_internals

# pytest's TerminalReporter calls pytest_terminal_summary for these exit
# statuses (and MAX_WARNINGS_ERROR, 6, where pytest has it).
SUMMARY_EXIT_CODES = (0, 1, 2, 4, 5, 6)


class HooklessTerminal:
    """The terminal reporter without its hooks (no progress, no summary).

    pytest<9 asks for the terminal writer on every failed assertion compare
    (``config.get_terminal_writer()`` asserts the plugin is registered), and
    live logging and plugins look it up too, so a process whose terminal is
    the engine's keeps one under the name "terminalreporter". Hooks are found
    by ``dir()``, which shows none of the reporter's; attribute access goes
    to the real one.
    """

    def __init__(self, reporter):
        self._reporter = reporter

    def __getattr__(self, name):
        return getattr(self._reporter, name)


def hide_terminal(config):
    """Replaces pytest's terminal reporter by its hookless stand-in; returns
    the real one (None with ``-p no:terminal``)."""
    pm = config.pluginmanager
    terminal = pm.get_plugin("terminalreporter")
    if terminal is None or isinstance(terminal, HooklessTerminal):
        return None
    pm.unregister(terminal)
    pm.register(HooklessTerminal(terminal), "terminalreporter")
    return terminal


def _is_rendered_by_engine(plugin):
    """pytest's own summary parts (junit's line, --durations) and ours."""
    module = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
    return pytest_internals.pytest_owns_module(module) or module.startswith("rpytest_worker")


class PluginSummary:
    """Plays the terminal reporter's end of session for the other plugins."""

    def __init__(self, config, terminal, send):
        self.config = config
        self.terminal = terminal
        self.send = send

    def engine_parts(self):
        hook = self.config.hook.pytest_terminal_summary
        return [impl.plugin for impl in hook.get_hookimpls() if _is_rendered_by_engine(impl.plugin)]

    def wanted(self):
        """Whether any plugin writes a summary (then it needs ``stats``)."""
        return len(self.engine_parts()) < len(self.config.hook.pytest_terminal_summary.get_hookimpls())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(self, session, exitstatus):
        # As pytest's terminal reporter: the status the hook was called
        # with, not one a conftest's pytest_sessionfinish set since.
        yield
        exitstatus = int(exitstatus)
        if exitstatus not in SUMMARY_EXIT_CODES or getattr(self.config.option, "no_summary", False):
            return
        text = self._run_hooks(exitstatus)
        if text:
            self.send(protocol.terminal_summary(text))

    def _run_hooks(self, exitstatus):
        if not self.wanted():
            return ""
        caller = self.config.pluginmanager.subset_hook_caller("pytest_terminal_summary", self.engine_parts())
        real = pytest_internals.terminal_writer_of(self.terminal)
        buffer = io.StringIO()
        writer = type(real)(buffer)
        writer.hasmarkup = real.hasmarkup
        writer.fullwidth = real.fullwidth
        pytest_internals.swap_terminal_writer(self.terminal, writer)
        try:
            caller(terminalreporter=self.terminal, exitstatus=exitstatus, config=self.config)
        finally:
            pytest_internals.swap_terminal_writer(self.terminal, real)
        return buffer.getvalue()


def take_over(config, send):
    """Hides the terminal and, when plugins write a summary, registers the
    stand-in that runs them; returns it, or None."""
    terminal = hide_terminal(config)
    if terminal is None:
        return None
    summary = PluginSummary(config, terminal, send)
    if not summary.wanted():
        return None
    config.pluginmanager.register(summary, "rpytest-plugin-summary")
    return summary
