"""The assistant works in the notebook (tools/notebook_tools.py): off until the user turns it on, every run of
code approved first, its output, value and error back to the model, a stop that interrupts it, the kernel's
history in place of a notebook no front end shows, and the sidebar's bridge that lets a front end answer.

Most tests run in one real kernel (jupyter_client), where the code runs in the user's namespace; the bridge's
wire end is driven from Python against a PanelSession, as the sidebar drives it.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from scripted import child_env
from test_magics import Kernel, kernel_env

from ancia_jupyter.app import get_app
from ancia_jupyter.errors import ToolError
from ancia_jupyter.notebook.notebook_bridge import GONE
from ancia_jupyter.notebook.panel_session import PanelSession

SETUP = '''
import json, threading, time, scripted
import ancia_jupyter as ancia
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import ToolError

def _refused(name, arguments, **options):
    try:
        ancia.tools.call(name, arguments, **options)
    except ToolError as exc:
        return str(exc)

def _calls(*calls):
    """The next answer calls notebook.run_code with each code in turn, then says "Done."."""
    get_app().models.load()
    texts = ['<tool_call>' + json.dumps({"name": "notebook_run_code", "arguments": {"code": c}}) + '</tool_call>'
             for c in calls]
    return scripted.install(scripted.says(*texts, "Done."))
'''


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, tiny_model_dir):
    home = tmp_path_factory.mktemp("agent-kernel")
    k = Kernel(child_env(kernel_env(home / "data", home / "models")), str(home))
    try:
        k.run("%load_ext ancia_jupyter").ok()
        k.run(SETUP).ok()
        k.run(f"ancia.models.register('tiny', {str(tiny_model_dir)!r})\nancia.models.select('tiny')\n"
              "ancia.models.set_params('tiny', temperature=0.0, max_tokens=300, context_window=2048)").ok()
        yield k
    finally:
        k.close()


def call(kernel: Kernel, code: str, approve: str = "lambda call: True") -> str:
    """notebook.run_code called by hand in the kernel, from a cell; its text (the cell prints nothing else)."""
    run = kernel.run(f"_out = ancia.tools.call('notebook.run_code', {{'code': {code!r}}}, approve={approve})").ok()
    assert run.stdout == "" and run.stderr == "", "the code's output leaked into the cell that asked"
    return kernel.value("_out")


# -- consent ------------------------------------------------------------------------------------------------


def test_the_agent_is_off_until_turned_on_and_off_hides_the_tools(kernel):
    names = "sorted(t['name'] for t in ancia.tools.list() if t['available'] and t['name'].startswith('notebook.'))"
    schemas = "[s['function']['name'] for s in get_app().tools.schemas(None)]"
    assert kernel.value(names) == []
    assert "notebook_run_code" not in kernel.value(schemas)
    assert "not turned on 'notebook_agent'" in kernel.value("_refused('notebook.run_code', {'code': 'x = 1'}, "
                                                            "approve=lambda call: True)")

    on = kernel.run("%ancia agent on").ok()
    assert on.stdout.startswith("The assistant works in the notebook: it can read the cells, add cells, and run code")
    assert kernel.value(names) == ["notebook.cells", "notebook.insert_cell", "notebook.run_code"]
    assert {"notebook_cells", "notebook_insert_cell", "notebook_run_code"} <= set(kernel.value(schemas))
    assert kernel.value("ancia.settings.get()['notebook_agent']") is True

    off = kernel.run("%ancia agent off").ok()
    assert off.stdout.startswith("The assistant does not work in the notebook")
    assert kernel.value(names) == [] and "notebook_cells" not in kernel.value(schemas)
    assert kernel.run("%ancia agent").ok().stdout.startswith("The assistant does not work")
    assert kernel.run("%ancia agent maybe").one_line_error() == "UsageError: Write %ancia agent on, or %ancia agent off."
    kernel.run("%ancia agent on").ok()


def test_run_code_leaves_x_42_after_approval_and_nothing_without(kernel):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    refused = kernel.value("_refused('notebook.run_code', {'code': 'x = 41 + 1'})")
    assert refused.startswith("notebook.run_code: denied: this tool needs the user's approval")
    assert kernel.value("'x' in globals()") is False
    assert kernel.value("_refused('notebook.run_code', {'code': 'x = 41 + 1'}, approve=lambda call: False)") == \
        "notebook.run_code: denied by the user"
    assert kernel.value("'x' in globals()") is False

    out = call(kernel, "x = 41 + 1")
    assert out.startswith("Ran in the kernel's namespace, not in a cell: no notebook front end is connected")
    assert out.endswith("It ran without output (nothing printed, no value on the last line).")
    assert kernel.value("x") == 42


def test_what_the_code_prints_its_value_and_its_error_reach_the_result(kernel):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    out = call(kernel, "import sys\nimport pandas as pd\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"
                       "temps = pd.DataFrame({'city': ['Oslo', 'Rome'], 'c': [5.0, 21.5]})\ntemps")
    assert "stdout:\n```\nto stdout\n```" in out and "stderr:\n```\nto stderr\n```" in out
    assert "- type: `pandas.DataFrame`" in out and "- shape: 2 rows × 2 columns" in out
    assert "city: " in out and "Rome" in out  # dtypes and head, as kernel.variables shows them
    assert kernel.value("list(temps.city)") == ["Oslo", "Rome"]

    error = call(kernel, "def half(n):\n    return n / 0\nprint('before')\nhalf(3)")
    assert "stdout:\n```\nbefore\n```" in error
    assert 'File "<ancia run_code' in error and "return n / 0" in error
    assert error.rstrip("`\n").endswith("ZeroDivisionError: division by zero")
    assert "SyntaxError" in call(kernel, "x = (1")
    long = call(kernel, "print('y' * 50_000)")
    assert "more characters not shown" in long and len(long) < 16_000 + 500


def test_ctrl_c_on_the_cell_that_asked_stops_a_sleeping_run_within_about_a_second(kernel, tmp_path):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    started = tmp_path / "started"
    code = f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(30)\nslept = True"
    kernel.run(f"_undo = _calls({code!r})").ok()
    msg_id = kernel.client.execute("r = ancia.chat('Sleep', tools=['notebook.run_code'], approve=lambda c: True)")
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.02)
    interrupted = time.monotonic()
    kernel.manager.interrupt_kernel()
    while True:
        msg = kernel.client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                and msg["content"]["execution_state"] == "idle":
            break
    elapsed = time.monotonic() - interrupted
    kernel.run("_undo()").ok()
    print(f"Ctrl-C to the cell's end, with time.sleep(30) running: {elapsed:.2f} s")
    assert elapsed < 2.5
    output = kernel.value("r.tool_calls[0]['output']")
    assert output.startswith("The run was stopped.") and "KeyboardInterrupt: stopped" in output
    assert kernel.value("r.status") == "stopped" and kernel.value("'slept' in globals()") is False


def test_a_stop_interrupts_running_python_at_once(kernel, tmp_path):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    started = tmp_path / "started"
    code = f"import time\nopen({str(started)!r}, 'w').close()\nspins = 0\nwhile True:\n    spins += 1\n    time.sleep(0.01)"
    kernel.run(f"_undo = _calls({code!r})\n_box = {{}}\n"
               "threading.Thread(target=lambda: _box.update(r=ancia.chat('Spin', tools=['notebook.run_code'], "
               "approve=lambda c: True))).start()").ok()
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.02)
    took = kernel.value("(lambda t: (ancia.stop(), [time.sleep(0.01) for _ in iter(lambda: 'r' in _box, True)], "
                        "time.monotonic() - t)[-1])(time.monotonic())")
    kernel.run("_undo()").ok()
    print(f"ancia.stop() to the answer's end, with a Python loop running: {took:.2f} s")
    assert took < 1.0
    output = kernel.value("_box['r'].tool_calls[0]['output']")
    assert output.startswith("The run was stopped.") and output.rstrip("`\n").endswith("KeyboardInterrupt")
    spins = kernel.value("spins")
    time.sleep(0.3)
    assert kernel.value("spins") == spins  # the loop itself ended


# -- without a notebook front end --------------------------------------------------------------------------


def test_the_kernels_history_stands_in_for_the_notebook_and_says_so(kernel):
    kernel.run("%ancia agent on").ok()
    kernel.run("hist_a = 3").ok()
    kernel.run("hist_a * 2").ok()
    text = kernel.value("ancia.tools.call('notebook.cells')")
    assert text.startswith("This is the kernel's input history, not the notebook: no notebook front end is "
                           "connected")
    assert "### cell In[" in text and "%ancia agent on" in text  # as typed, magics as magics
    assert "hist_a = 3" in text and "hist_a * 2" in text
    entry = text[text.index("hist_a * 2"):]
    assert "output:" in entry and "6" in entry
    assert kernel.value("_refused('notebook.insert_cell', {'source': 'print(1)'})") == (
        "notebook.insert_cell: no notebook front end is connected (open the notebook in JupyterLab or Notebook 7 "
        "with the Ancia sidebar showing it): the cell was not inserted")


FAKE_FRONT_END = '''
class _FakeFrontEnd:
    answers_while_busy = True  # a comm on a kernel subshell

    def __init__(self):
        self.asked = []

    def request(self, op, args, *, timeout, stop=None):
        self.asked.append(op)
        if op == "cells":
            return {"path": "fake.ipynb", "active": "c1",
                    "cells": [{"id": "c1", "type": "code", "source": "z = 1", "execution_count": 1, "outputs": []}]}
        return {"cell_id": "c9", "after": "c1", "execution_count": 7, "status": "ok",
                "outputs": [{"type": "stream", "name": "stdout", "text": "from the cell\\n"}]}

_fake = _FakeFrontEnd()
_detach = get_app().notebook.attach(_fake)
'''


def test_a_front_end_runs_code_as_a_cell_unless_the_cell_that_asked_holds_the_kernel(kernel):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    kernel.run(FAKE_FRONT_END).ok()
    try:
        listing = kernel.value("ancia.tools.call('notebook.cells')")
        assert listing.startswith("The notebook fake.ipynb, 1 cells") and "### cell c1 · code · [1] · active" in listing
        busy = call(kernel, "w = 1")  # asked from a cell: the main thread cannot run another one
        assert busy.startswith("Ran in the kernel's namespace, not in a cell: the kernel is running a cell (the one "
                               "that asked, say), and no new cell can run before it ends.")
        assert kernel.value("w") == 1 and kernel.value("_fake.asked") == ["cells"]

        kernel.run("_box = {}\nthreading.Thread(target=lambda: (time.sleep(0.5), _box.update(out=ancia.tools.call("
                   "'notebook.run_code', {'code': 'w = 2'}, approve=lambda c: True)))).start()").ok()
        time.sleep(1.5)  # the kernel is idle meanwhile: the front end runs it
        out = kernel.value("_box['out']")
        assert out.startswith("Ran in a new cell [7] (id c9) below cell c1, in the notebook.")
        assert "stdout:\n```\nfrom the cell\n```" in out
        assert kernel.value("_fake.asked") == ["cells", "run"] and kernel.value("w") == 1

        kernel.run("_fake.answers_while_busy = False").ok()  # its replies would wait for the cell that asked
        assert kernel.value("ancia.tools.call('notebook.cells')").startswith(
            "This is the kernel's input history, not the notebook: the notebook's front end cannot answer while "
            "the kernel runs a cell (the one that asked, say).")
        assert kernel.value("_fake.asked") == ["cells", "run"]
    finally:
        kernel.run("_detach()").ok()


def test_the_model_calls_run_code_end_to_end(kernel):
    kernel.run("ancia.settings.update(notebook_agent=True)").ok()
    code = "answer = 6 * 7\nprint('answer is', answer)"
    kernel.run(f"_undo = _calls({code!r})\n_asked = []\n"
               "r = ancia.chat('What is 6 times 7? Compute it.', tools=['notebook.run_code'], "
               "approve=lambda call: _asked.append([call.name, call.arguments]) or True)\n_undo()").ok()
    assert kernel.value("_asked") == [["notebook.run_code", {"code": code}]]
    assert kernel.value("answer") == 42
    assert kernel.value("r.text") == "Done." and kernel.value("r.status") == "complete"
    output = kernel.value("r.tool_calls[0]['output']")
    assert "stdout:\n```\nanswer is 42\n```" in output
    history = kernel.value("[[m['role'], m['tool_name'], m['content']] for m in ancia.chats.history(r.chat_id)]")
    assert [m[0] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[2][1] == "notebook_run_code" and "answer is 42" in history[2][2]


# -- the sidebar's bridge, from Python ---------------------------------------------------------------------


class Sidebar:
    """The sidebar's end of a PanelSession: what the kernel sends it, and its replies."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.session = PanelSession(self.sent.append)

    def requests(self, op: str | None = None) -> list[dict]:
        return [m for m in list(self.sent) if m["type"] == "notebook_request" and op in (None, m["op"])]

    def wait_request(self, op: str) -> dict:
        deadline = time.monotonic() + 5
        while not self.requests(op):
            assert time.monotonic() < deadline, f"no {op} request"
            time.sleep(0.01)
        return self.requests(op)[-1]


def test_the_sidebar_offers_the_notebook_and_the_tools_ask_it_over_the_comm():
    sidebar = Sidebar()
    notebook = get_app().notebook
    assert notebook.front_end() is None
    sidebar.session.handle({"type": "request", "id": -2, "action": "notebook_bridge", "enabled": True})
    assert {"type": "reply", "id": -2, "ok": True, "data": {"attached": True}} in sidebar.sent
    bridge = notebook.front_end()
    assert bridge is not None and bridge.answers_while_busy is False  # handled on this (the main) thread

    got: dict = {}
    worker = threading.Thread(target=lambda: got.update(cells=bridge.request("cells", {}, timeout=5)))
    worker.start()
    request = sidebar.wait_request("cells")
    sidebar.session.handle({"type": "notebook_reply", "id": request["id"], "ok": True,
                            "data": {"path": "a.ipynb", "active": None, "cells": []}})
    worker.join(5)
    assert got["cells"] == {"path": "a.ipynb", "active": None, "cells": []}

    worker = threading.Thread(target=lambda: got.update(error=_error(lambda: bridge.request(
        "insert", {"source": "1", "kind": "code", "after": "nope"}, timeout=5))))
    worker.start()
    request = sidebar.wait_request("insert")
    assert (request["source"], request["kind"], request["after"]) == ("1", "code", "nope")
    sidebar.session.handle({"type": "notebook_reply", "id": request["id"], "ok": False,
                            "error": "No cell with id nope in a.ipynb:\nnotebook.cells lists the ids."})
    worker.join(5)
    assert got["error"] == "No cell with id nope in a.ipynb: notebook.cells lists the ids."

    stop = threading.Event()
    worker = threading.Thread(target=lambda: got.update(run=bridge.request("run", {"code": "1"}, timeout=30,
                                                                           stop=stop.is_set)))
    worker.start()
    run = sidebar.wait_request("run")
    stop.set()
    sidebar.wait_request("interrupt")  # the front end is asked to interrupt the kernel
    sidebar.session.handle({"type": "notebook_reply", "id": run["id"], "ok": True, "data": {"status": "error"}})
    worker.join(5)
    assert got["run"] == {"status": "error"}

    worker = threading.Thread(target=lambda: got.update(gone=_error(lambda: bridge.request("cells", {}, timeout=30))))
    worker.start()
    sidebar.wait_request("cells")
    closed = time.monotonic()
    sidebar.session.close()  # the sidebar went away: the waiting tool fails at once, the bridge is detached
    worker.join(5)
    assert got["gone"] == GONE and time.monotonic() - closed < 1
    assert notebook.front_end() is None


def _error(action) -> str:
    try:
        action()
    except ToolError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_a_sidebar_takes_its_offer_back():
    sidebar = Sidebar()
    sidebar.session.handle({"type": "request", "id": 1, "action": "notebook_bridge"})
    assert get_app().notebook.front_end() is not None
    sidebar.session.handle({"type": "request", "id": 2, "action": "notebook_bridge", "enabled": False})
    assert sidebar.sent[-1] == {"type": "reply", "id": 2, "ok": True, "data": {"attached": False}}
    assert get_app().notebook.front_end() is None
    json.dumps(sidebar.sent)  # everything on the wire is JSON
    sidebar.session.close()
