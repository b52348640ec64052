"""What the benchmark scripts share: a report printed as it goes and written whole at the end.

The scripts run as ``python benchmarks/<name>.py``, so this module is found beside them.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from deepemg._files import write_whole


class Report:
    """Lines printed as they come and kept, to be written to a results file whole.

    Examples
    --------
    >>> report = Report()
    >>> report.say("fit: 1.0 s")
    fit: 1.0 s
    >>> report.text()
    'fit: 1.0 s\\n'
    """

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self.began = time.perf_counter()

    def say(self, text: str = "") -> None:
        """Print ``text`` now and keep it for the file."""
        print(text, flush=True)
        self._buffer.write(text + "\n")

    def machine(self) -> dict:
        """Say the machine and versions (:func:`deepemg.threads.machine_info`) as a JSON line."""
        from deepemg.threads import machine_info

        info = machine_info()
        self.say(json.dumps(info))
        return info

    def footer(self, info: dict, extra: str = "") -> None:
        """Say the machine in words, the run's wall time and the date."""
        self.say(
            f"machine: {info['platform']}, {info['cores']} cores ({info['cpu']}), torch "
            f"{info['torch']}{extra}; run {time.perf_counter() - self.began:.0f} s, "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
        )

    def text(self) -> str:
        """Everything said so far."""
        return self._buffer.getvalue()

    def write(self, path: str | Path) -> Path:
        """Write what was said to ``path``, whole or not at all (its folder is made)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.text()
        return write_whole(path, lambda temporary: Path(temporary).write_text(text, "utf-8"))


def write_figure(figure, path: str | Path) -> Path:
    """Save a matplotlib ``figure`` as a PNG at ``path``, whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_whole(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
