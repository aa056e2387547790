"""The code of an answer, for a new cell: what a small model writes, shape by shape, and what becomes a cell.

Every answer below is a shape the default model (SmolLM2 135M) writes; the first ones are its own words.
Whatever comes back parses; prose never does.
"""

from __future__ import annotations

import ast

import pytest

from ancia_jupyter.notebook.code_cells import python_code

HISTOGRAM = "import matplotlib.pyplot as plt\n\nnumbers = [1, 2, 3, 4]\nplt.hist(numbers, bins=10)\nplt.show()"

SHAPES = {
    # the model's own answers
    "a closing fence it never opened, then prose": (
        'def reverse_string(s):\n    return s[::-1]\n\nprint(reverse_string("Hello World"))\n```\n\n'
        "This code uses Python's slicing syntax to reverse a string. The `[::-1]` slicing syntax reverses it.",
        'def reverse_string(s):\n    return s[::-1]\n\nprint(reverse_string("Hello World"))'),
    "code ending in a stray fence": (HISTOGRAM + "\n```", HISTOGRAM),
    "a stray fence, then its output in a block": (
        HISTOGRAM + "\n```\n\nOutput:\n```\nHistogram of list of numbers with matplotlib:\n```", HISTOGRAM),
    "code, then an explanation, no fence": (
        "df.hist(df.get_dtypes().name(), bins=[None, 10])\n\n"
        "The histogram plot will show the age column of the DataFrame df with the bins of 10.",
        "df.hist(df.get_dtypes().name(), bins=[None, 10])"),
    "prose, then a block, then its output": (
        "To read a CSV file, use `read_csv`. Here's an example:\n\n```python\nimport pandas as pd\n\n"
        "df = pd.read_csv('data.csv')\nprint(df)\n```\n\nThis will output:\n\n```\nDataFrame with 1000 rows\n```",
        "import pandas as pd\n\ndf = pd.read_csv('data.csv')\nprint(df)"),
    "an unclosed block cut off at the token limit": (
        "```python\nimport matplotlib.pyplot as plt\n\nplt.hist([1, 2], bins=[10, 20])\nplt.hist([1, 2], bins=[10, 2",
        "import matplotlib.pyplot as plt\n\nplt.hist([1, 2], bins=[10, 20])"),
    "an unclosed block that ends cleanly": ("```py\nunclosed = True", "unclosed = True"),
    # shapes of other answers
    "one block, as asked": ("```python\nprint(6 * 7)\n```", "print(6 * 7)"),
    "code without any fence": ("x = 1  # no fence", "x = 1  # no fence"),
    "a shell command, then the Python": (
        "First install it:\n```bash\npip install pandas\n```\nThen:\n```python\nimport pandas as pd\npd.read_csv('a.csv')\n```",
        "import pandas as pd\npd.read_csv('a.csv')"),
    "a first block that does not parse": (
        "```python\nfor x in\n```\nor rather\n```python\nfor x in range(3):\n    print(x)\n```",
        "for x in range(3):\n    print(x)"),
    "two blocks: the first wins, never joined": (
        "```python\nimport numpy as np\nx = np.arange(3)\n```\nAnd:\n```python\nprint(x.sum())\n```",
        "import numpy as np\nx = np.arange(3)"),
    "a doctest session": (
        ">>> numbers = [3, 1, 2]\n>>> sorted(numbers)\n[1, 2, 3]\n>>> for n in numbers:\n...     print(n)\n3\n1\n2",
        "numbers = [3, 1, 2]\nsorted(numbers)\nfor n in numbers:\n    print(n)"),
    "prose before the code, no fence": (
        "Here is how you can do it:\nimport math\nprint(math.pi)", "import math\nprint(math.pi)"),
    "a one-word preface that parses": ("Sure\nimport math\nprint(math.pi)", "import math\nprint(math.pi)"),
    "fences at the ends of lines": (
        "Here it is: ```python\nprint('hi')```\nThat prints hi.", "print('hi')"),
    "a closing fence of two backticks": ("```python\nprint('hi')\n``\nDone.", "print('hi')"),
    "inline code on a line of its own": ("Call this:\n\n`df.describe()`\n\nIt summarises df.", "df.describe()"),
    "a block indented in a list item": (
        "1. Load it:\n   ```python\n   import json\n   data = json.loads('[1]')\n   ```", "import json\ndata = json.loads('[1]')"),
    "a trailing name shows its value": ("```python\nimport pandas as pd\ndf = pd.DataFrame()\ndf\n```",
                                        "import pandas as pd\ndf = pd.DataFrame()\ndf"),
    "an output line after the code": ("```python\nprint(2 + 2)\nOutput: 4\n```", "print(2 + 2)"),
    "a labelled Python block": ("```Python3\nimport os\nos.getcwd()\n```", "import os\nos.getcwd()"),
    "a function cut off in its body": (
        "```python\ndef half(n):\n    return n / 2\n\ndef double(n):\n    return n *",
        "def half(n):\n    return n / 2"),
    "imports alone, when the code breaks off after them": (
        "```python\nimport matplotlib.pyplot as plt\n\ndf = pd.DataFrame({\n    'Age': [18, 20, 21, 2", None),
    "imports alone, as the whole answer": ("```python\nimport pandas as pd\n```", "import pandas as pd"),
    "top-level await, as IPython runs it": ("```python\nawait asyncio.sleep(0)\n```", "await asyncio.sleep(0)"),
    "a return outside a function, left out": ("```python\nx = 1\nreturn x\n```", "x = 1"),
    # no code: nothing to insert
    "the word Output alone": ("Output:", None),
    "prose only": ("To plot a histogram, use the hist function of matplotlib.", None),
    "prose that names code": ("df.shape[0] is 3, which is the number of rows in the DataFrame.", None),
    "a one-word answer": ("Sure", None),
    "printed output in a plain block": ("```\n[1, 2, 3]\n```", None),
    "a JSON block that would parse as Python": ('```json\n{"a": 1, "b": [true, null]}\n```', None),
    "a JSON block labelled as JSON, even a Python-looking one": ("```json\n{'a': len([1])}\n```", None),
    "a bash block only": ("```bash\nls -la\n```", None),
    "a string alone": ('"The answer is 42."', None),
    "comments only": ("# nothing to do here", None),
    "an empty answer": ("", None),
    "a block with nothing in it": ("```python\n```", None),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_an_answer_gives_its_code_or_nothing(shape):
    answer, expected = SHAPES[shape]
    code = python_code(answer)
    assert code == expected
    if code is not None:
        ast.parse(code)


def test_whatever_comes_back_parses_and_is_never_the_prose():
    prose = "This code uses Python's slicing syntax to reverse a string."
    for answer, _ in SHAPES.values():
        for variant in (answer, f"{prose}\n{answer}", f"{answer}\n{prose}", answer.replace("```", "``` ")):
            code = python_code(variant)
            if code is not None:
                ast.parse(code)
                assert prose not in code


def test_a_long_answer_of_prose_is_read_quickly():
    import time

    answer = "\n".join(f"Line {i} of an explanation, with words (and brackets" for i in range(400))
    started = time.perf_counter()
    assert python_code(answer) is None
    assert time.perf_counter() - started < 2
