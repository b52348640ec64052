"""The user guide's and the README's claims, checked against the code and the results files.

The pages are not doctested; these tests read them as text instead: every ``deepemg.…`` or
``baselines.…`` name written in backticks resolves, every relative link and repository path
exists, signatures and defaults written out match the code, the ``deepemg`` command lines use
options that exist, the Python examples import what exists, and the numbers quoted from
``docs/results/`` are the numbers there. Fast (no fit, no simulation) and deterministic.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest

from deepemg.benchmark import current_label
from deepemg.datasets import SCENARIOS
from deepemg.report import report_version

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"

PAGES = ["README.md"] + [
    f"docs/{name}.md"
    for name in (
        "index",
        "install",
        "data",
        "physics",
        "uncertainty",
        "streaming",
        "scaling",
        "baselines",
        "limitations",
        "scenarios",
        "nmm",
        "cross_subject",
    )
]
"""The pages these tests hold to the code (the others are checked by their authors)."""

FENCE = re.compile(r"^(```|~~~)(.*?)\n(.*?)^\1[ \t]*$", re.S | re.M)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DOTTED = re.compile(r"(?<![\w./-])((?:deepemg|baselines)(?:\.[A-Za-z_]\w*)+)")
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:deepemg|baselines|tests|examples|benchmarks|docs|\.ci)/[\w./-]*)"
)


FILE_SUFFIXES = {"csv", "json", "md", "mot", "npz", "osim", "png", "pt", "py", "sto", "txt", "zip"}


def read(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def prose(page: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", read(page))


def spans(page: str) -> list[str]:
    """The page's inline code, whitespace collapsed (a span may run over a line end)."""
    return [" ".join(m.group(1).split()) for m in SPAN.finditer(prose(page))]


def code_blocks(page: str, language: str) -> list[str]:
    return [m.group(3) for m in FENCE.finditer(read(page)) if m.group(2).strip() == language]


def resolve(name: str):
    """The object a dotted name stands for: the longest importable module, then attributes."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def test_the_pages_exist():
    for page in PAGES:
        assert (ROOT / page).is_file(), page


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize("page", PAGES)
def test_dotted_names_resolve(page):
    """Every ``deepemg.x.y`` / ``baselines.x`` written in backticks is a real attribute."""
    missing = []
    for span in spans(page):
        for name in DOTTED.findall(span):
            if name.rsplit(".", 1)[1] in FILE_SUFFIXES:  # a file name (``deepemg.json``)
                continue
            try:
                resolve(name)
            except (ImportError, AttributeError):
                missing.append(name)
    assert not missing, f"{page} names what does not exist: {sorted(set(missing))}"


SHORT_PREFIXES = {"physics.": "deepemg.physics.", "opensim.": "deepemg.opensim."}
CLASSES = (
    "deepemg.NMMRegressor",
    "deepemg.NMMEnsemble",
    "deepemg.StreamingPredictor",
    "deepemg.physics.MusculoskeletalModel",
    "deepemg.physics.SubjectParameters",
    "deepemg.preprocessing.EMGEnvelope",
    "baselines.SynergyExtrapolationRegressor",
)


def instance_attribute(cls: str, attribute: str) -> bool:
    """Whether the class sets ``self.attribute`` (``SubjectParameters.code``, a parameter
    registered in ``__init__`` only when it is used)."""
    if not attribute.isidentifier():
        return False
    return re.search(rf"\bself\.{attribute}\s*=", inspect.getsource(resolve(cls))) is not None


@pytest.mark.parametrize("page", PAGES)
def test_short_names_resolve(page):
    """``physics.x`` and ``opensim.x`` (deepemg's modules) and ``Class.member`` of the public
    classes, written in backticks, exist."""
    classes = {name.rsplit(".", 1)[1]: name for name in CLASSES}
    missing = []
    for span in spans(page):
        head = re.match(r"[A-Za-z_][\w.]*", span)
        if not head or "." not in head.group(0):
            continue
        name = head.group(0).rstrip(".")
        for short, full in SHORT_PREFIXES.items():
            if name.startswith(short):
                try:
                    resolve(full + name[len(short) :])
                except (ImportError, AttributeError):
                    try:  # OpenSim's own classes (``opensim.Model``)
                        resolve(name)
                    except (ImportError, AttributeError):
                        missing.append(name)
        first = name.split(".")[0]
        if first in classes:
            try:
                resolve(classes[first] + name[len(first) :])
            except (ImportError, AttributeError):
                if not instance_attribute(classes[first], name[len(first) + 1 :]):
                    missing.append(name)
    assert not missing, f"{page} names what does not exist: {sorted(set(missing))}"


# ---------------------------------------------------------------------------- files and links
def slug(title: str) -> str:
    """MyST's and GitHub's heading anchor."""
    title = re.sub(r"[`*]", "", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", title.lower().replace(" ", "-"))


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(2).strip()) for m in re.finditer(r"^(#{1,6})\s+(.*)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_exist(page):
    """Each relative link (and image) points at a file that exists, and at a heading of it."""
    source = ROOT / page
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = source if not path else (source.parent / path).resolve()
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{page} links to what is not there: {broken}"


@pytest.mark.parametrize("page", PAGES)
def test_repository_paths_exist(page):
    """Each file or folder of the repository named in a page (``benchmarks/bench_nmm.py``,
    ``docs/results/speed.txt``, ``tests/data/box-lift``) exists."""
    missing = []
    text = re.sub(r"\([a-z]+://[^)]*\)", "", read(page))  # not the addresses of web links
    for path in REPO_PATH.findall(text):
        path = path.rstrip("./")
        if path.startswith("docs/_build"):  # the documentation's build folder
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{page} names files that do not exist: {sorted(set(missing))}"


# ---------------------------------------------------------------------------- signatures
CALLABLE_MODULES = (
    "deepemg",
    "deepemg.io",
    "deepemg.datasets",
    "deepemg.physics",
    "deepemg.opensim",
    "deepemg.preprocessing",
    "deepemg.validation",
    "deepemg.streaming",
    "deepemg.channels",
    "deepemg.threads",
    "baselines",
)


@cache
def callables() -> dict[str, list]:
    """Short name -> the public functions, classes and methods that carry it."""
    found: dict[str, list] = {}
    for module in CALLABLE_MODULES:
        module = importlib.import_module(module)
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if callable(obj) and not name.startswith("_"):
                found.setdefault(name, []).append(obj)
    for cls in CLASSES:
        cls = resolve(cls)
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            member = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            if callable(member):
                found.setdefault(name, []).append(member)
    return found


def candidates(head: str) -> list:
    """The callables a written name (``load_trials``, ``deepemg.io.load_trials``,
    ``NMMRegressor.load``) may stand for."""
    for short, full in SHORT_PREFIXES.items():
        if head.startswith(short):
            head = full + head[len(short) :]
    if head.startswith(("deepemg.", "baselines.")):
        try:
            return [resolve(head)]
        except (ImportError, AttributeError):
            return []
    first, _, rest = head.partition(".")
    if rest and first in {name.rsplit(".", 1)[1] for name in CLASSES}:
        full = next(name for name in CLASSES if name.endswith("." + first))
        try:
            return [resolve(f"{full}.{rest}")]
        except AttributeError:
            return []
    if "." in head:  # a variable's method (``model.activation``): not a claim about a name
        return []
    return list(callables().get(head, []))


EMPTY = inspect.Parameter.empty


def parameters(obj) -> list[inspect.Parameter]:
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


BARE = object()
"""A parameter written by its name alone (``trials`` in ``load_trials(trials, ...)``)."""


def written_call(span: str):
    """``(head, [(name, value)])`` of a span written as a call or a signature, or None. A bare
    name is ``(name, BARE)``; a literal keyword ``(name, value)``; a keyword whose value is not
    a literal ``(name, Ellipsis)``; a positional value that is not a name makes the span a call
    with arguments (None)."""
    span = re.sub(r"([(,])\s*\*\s*,", r"\1", span)  # a signature's bare *
    try:
        call = ast.parse(span, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call):
        return None
    head, func = [], call.func
    while isinstance(func, ast.Attribute):
        head.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):  # ``Estimator().method(...)``: not a name's signature
        return None
    head.insert(0, func.id)
    written = []
    for arg in call.args:
        if not isinstance(arg, ast.Name):
            return None
        written.append((arg.id, BARE))
    for keyword in call.keywords:
        if keyword.arg is None:
            return None
        try:
            written.append((keyword.arg, ast.literal_eval(keyword.value)))
        except ValueError:
            written.append((keyword.arg, Ellipsis))
    return ".".join(head), written


def check_written(obj, written) -> str | None:
    """None when ``written`` fits ``obj``'s signature, else what is wrong. A written-out
    signature (its names the parameters in order, every parameter before the keyword-only ones
    included) must give each literal default as the code's; a call must use parameters that
    exist."""
    try:
        params = parameters(obj)
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params]
    by_name = {p.name: p for p in params}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    listed = [name for name, _ in written]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2 and len(positional) <= len(listed) <= len(names):
        keywords_in_place = all(
            value is BARE or names[k] == name for k, (name, value) in enumerate(written)
        )
        if keywords_in_place and listed != names[: len(listed)]:
            return f"written as ({', '.join(listed)}), the code's is ({', '.join(names)})"
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    full = (
        listed == names[: len(listed)]
        and len(listed) >= len(positional) >= 1
        and len(listed) in (len(positional), len(positional) + len(keyword_only))
    )  # a signature lists all its positional parameters, and its keyword-only ones or none
    for name, value in written:
        if name not in by_name:
            if value is BARE or takes_any:  # a bare name in a call is the caller's variable
                continue
            return f"no parameter {name!r}"
        default = by_name[name].default
        if full and value is not BARE and value is not Ellipsis and default is not EMPTY:
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            if value != default:
                return f"{name}={value!r}, but the code's default is {default!r}"
    return None


@pytest.mark.parametrize("page", PAGES)
def test_signatures_and_calls_match_the_code(page):
    """``load_trials(trials, model="elbow", ...)`` written out in a page has the code's
    parameters and defaults; ``NMMRegressor(n_members=5)`` uses parameters that exist."""
    wrong = []
    for span in spans(page):
        parsed = written_call(span)
        if parsed is None:
            continue
        head, written = parsed
        found = candidates(head)
        if not found:
            continue
        problems = [check_written(obj, written) for obj in found]
        if all(problems):
            wrong.append(f"`{span}`: {problems[0]}")
    assert not wrong, f"{page}:\n" + "\n".join(wrong)


DEFAULT_BEFORE = re.compile(r"(?:\bthe default|\bby default \(|\bdefault:?)\s*$")
DEFAULT_AFTER = re.compile(r"^\s*(?:\((?:the )?default\b|, the default\b)")
DEFAULT_OWNERS = (
    "deepemg.NMMRegressor",
    "baselines.SynergyExtrapolationRegressor",
    "deepemg.StreamingPredictor",
    "deepemg.preprocessing.EMGEnvelope",
    "deepemg.datasets.make_elbow_lifting",
    "deepemg.datasets.make_scenario",
    "deepemg.io.load_trials",
)


@pytest.mark.parametrize("page", PAGES)
def test_defaults_named_in_the_pages_are_the_codes(page):
    """A value called the default in a page (the default `predict_physics="torque"`,
    `physics_drive="measured"` (the default)) is the code's default, for an estimator or
    function that has the parameter."""
    text = prose(page)
    owners = [resolve(name) for name in DEFAULT_OWNERS]
    checked, wrong = 0, []
    for match in SPAN.finditer(text):
        assignment = re.fullmatch(r"(\w+)=(.+)", " ".join(match.group(1).split()))
        if not assignment:
            continue
        before = " ".join(text[max(0, match.start() - 30) : match.start()].split())
        after = text[match.end() : match.end() + 20]
        if not (DEFAULT_BEFORE.search(before + " ") or DEFAULT_AFTER.search(after)):
            continue
        name, value = assignment.groups()
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            continue
        defaults = [
            inspect.signature(owner).parameters[name].default
            for owner in owners
            if name in inspect.signature(owner).parameters
        ]
        if defaults:
            checked += 1
            if value not in defaults:
                wrong.append(f"{name}={value!r}: the code's default is {defaults}")
    assert not wrong, f"{page}: {wrong}"


def test_the_default_predictor_is_the_one_the_pages_describe():
    """The NMM of the pages is ``NMMRegressor()`` as it predicts by default: the network's EMG
    corrected by the subject's muscle model, with the subject's own parameters."""
    from deepemg import NMMRegressor

    params = NMMRegressor().get_params()
    assert params["predict_physics"] == "auto"
    assert params["physics_drive"] == "measured"
    assert params["predict_overlap"] == 0.25
    assert params["window"] == 100
    assert list(inspect.signature(NMMRegressor.predict).parameters) == [
        "self",
        "X",
        "subject_ids",
        "predict_physics",
    ]
    from deepemg import NMMEnsemble  # the ensemble's spread: predict(X, return_std=True)

    assert "return_std" in inspect.signature(NMMEnsemble.predict).parameters
    assert 'predict_physics="auto"' in read("README.md")
    for page in ("README.md", "docs/index.md", "docs/nmm.md"):  # with each subject's model
        assert "nmm.predict(data.X, data.groups)" in read(page), page


PREDICTING = ("predict", "predict_torque", "predict_activation")


@pytest.mark.parametrize("page", PAGES)
def test_examples_fitted_per_subject_predict_per_subject(page):
    """An example that fits with ``subject_ids`` predicts with them: without, the default
    prediction-time physics corrects every subject's EMG with the population's parameters."""
    wrong = []
    for block in code_blocks(page, "python"):
        calls = [node for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Call)]
        attribute = [c for c in calls if isinstance(c.func, ast.Attribute)]
        if not any(
            c.func.attr == "fit" and any(k.arg == "subject_ids" for k in c.keywords)
            for c in attribute
        ):
            continue
        for call in attribute:
            if call.func.attr in PREDICTING and len(call.args) < 2:
                if not any(k.arg == "subject_ids" for k in call.keywords):
                    wrong.append(ast.unparse(call))
    assert not wrong, f"{page} predicts without the subjects it was fitted with: {wrong}"


def test_model_files_carry_their_osim_and_load_takes_model_and_device():
    from deepemg import NMMRegressor
    from deepemg.persistence import FORMAT_VERSION

    assert FORMAT_VERSION >= 3
    signature = inspect.signature(NMMRegressor.load)
    assert [(p.name, p.kind.name, p.default) for p in signature.parameters.values()] == [
        ("path", "POSITIONAL_OR_KEYWORD", inspect.Parameter.empty),
        ("model", "KEYWORD_ONLY", None),
        ("device", "KEYWORD_ONLY", None),
    ]


def test_a_sampling_rate_off_by_two_is_refused():
    """The pages: derivatives must hold within a factor of 1.5, so 2x is refused."""
    from deepemg.validation import DERIVATIVE_TOLERANCE

    assert 1 < DERIVATIVE_TOLERANCE < 2
    assert f"within a factor of {DERIVATIVE_TOLERANCE:g}" in prose("docs/streaming.md")


def test_channels_are_named_after_the_joint():
    import deepemg
    from deepemg.channels import layout_for

    elbow = layout_for("elbow")
    assert tuple(elbow.default_channels(deepemg.ELBOW_SURFACE_MUSCLES)) == deepemg.ELBOW_CHANNELS
    arm26 = layout_for(str(ROOT / "tests" / "data" / "arm26.osim"), "r_elbow_flex")
    assert arm26.angle == "r_elbow_flex_angle"
    assert arm26.torque == "r_elbow_flex_torque"
    for page in ("README.md", "docs/data.md"):
        assert "`r_elbow_flex_angle`" in read(page), page
    for name in ("elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass"):
        assert name in deepemg.ELBOW_CHANNELS


def test_subject_parameter_table_is_the_codes():
    """physics.md's table of the 32 parameters: names, ranges and nominal values."""
    from deepemg import ELBOW_MUSCLES
    from deepemg.physics import DEFAULT_PARAMETER_SPECS, SubjectParameters

    assert SubjectParameters(1, list(ELBOW_MUSCLES)).n_per_subject == 32
    text = read("docs/physics.md")
    table = text[text.index("| parameter | per |") :].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            rows[name] = cells
    number = r"(\N{MINUS SIGN}?[\d.]+)"

    def value(text):
        return float(text.replace("\N{MINUS SIGN}", "-"))

    assert set(rows) == {spec.name for spec in DEFAULT_PARAMETER_SPECS}
    for spec in DEFAULT_PARAMETER_SPECS:
        per, bounds, nominal = rows[spec.name][1:4]
        assert (per == "muscle") == spec.per_muscle, spec.name
        low, high = re.fullmatch(f"{number}\N{EN DASH}{number}", bounds).groups()
        assert (value(low), value(high)) == (spec.lower, spec.upper), spec.name
        assert value(re.match(number, nominal).group(1)) == spec.nominal, spec.name


def test_muscle_laws_named_in_the_pages_are_registered():
    from deepemg.physics import MUSCLE_LAWS

    assert set(MUSCLE_LAWS) >= {"rigid_tendon_degroote_fregly", "compliant_tendon_degroote_fregly"}
    for page in PAGES:
        for name in re.findall(r'muscle_law="(\w+)"', prose(page)):
            # my_law: a how-to; from_model: the law the model file's muscles declare
            assert name in MUSCLE_LAWS or name in ("my_law", "from_model"), (page, name)


# ---------------------------------------------------------------------------- the command
@cache
def subcommands() -> dict:
    from deepemg.cli import _parser

    parser = _parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return dict(action.choices)


def command_lines(page: str) -> list[str]:
    lines = [s for s in spans(page) if re.match(r"(?:\S*/)?deepemg \w", s)]
    for block in code_blocks(page, "bash"):
        lines += [line for line in block.splitlines() if re.search(r"(?:^|[\s/])deepemg \w", line)]
    return lines


@pytest.mark.parametrize("page", PAGES)
def test_command_options_exist(page):
    """``deepemg benchmark --quick``, ``deepemg predict --format sto``: each sub-command and
    option written in a page exists (with its value among the choices, where it has some)."""
    wrong = []
    for line in command_lines(page):
        for command, rest in re.findall(r"(?:^|[\s/])deepemg (\w+)(.*?)(?=&&|;|#|$)", line):
            if command.isupper():  # a placeholder: ``deepemg COMMAND --help``
                continue
            parser = subcommands().get(command)
            if parser is None:
                wrong.append(f"deepemg {command}")
                continue
            tokens = rest.split()
            for k, token in enumerate(tokens):
                option = token.split("=")[0]
                if not option.startswith("--"):
                    continue
                action = parser._option_string_actions.get(option)
                if action is None:
                    wrong.append(f"deepemg {command} {option}")
                elif action.choices and k + 1 < len(tokens) and "=" not in token:
                    value = tokens[k + 1]
                    if not value.startswith("-") and value not in action.choices:
                        wrong.append(f"deepemg {command} {option} {value}")
    assert not wrong, f"{page}: {wrong}"


def test_predict_writes_csv_or_sto():
    action = subcommands()["predict"]._option_string_actions["--format"]
    assert set(action.choices) == {"csv", "sto"}
    assert action.default == "csv"


# ---------------------------------------------------------------------------- examples
@pytest.mark.parametrize("page", PAGES)
def test_python_examples_parse_and_import_what_exists(page):
    problems = []
    for block in code_blocks(page, "python"):
        try:
            tree = ast.parse(block)
        except SyntaxError as error:
            problems.append(f"does not parse: {error}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "deepemg",
                "baselines",
            ):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        problems.append(f"from {node.module} import {alias.name}")
    assert not problems, f"{page}: {problems}"


# ---------------------------------------------------------------------------- numbers
@cache
def report_label(folder: str, label: str) -> str:
    """A method's label in the report ``RESULTS / folder``, as deepemg labels it today.

    The reports checked in were written by deepemg 0.1.0.dev0, whose "NMM" is today's "NMM,
    network alone" and whose "NMM + prediction-time physics" is today's "NMM": translated by
    the version their ``settings.json`` records (``deepemg.benchmark.current_label``).
    """
    return current_label(label, report_version(RESULTS / folder))


@cache
def scenario_results() -> dict:
    """``docs/results/scenarios/results.md``: (scenario, evaluation, method) -> column -> cell.

    ``method`` is today's label (:func:`report_label` of the scenario's own report).
    """
    rows, scenario, header = {}, None, None
    for line in (RESULTS / "scenarios" / "results.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            scenario, header = line[3:].strip(), None
        elif line.startswith("| evaluation | method |"):
            header = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("| evaluation | target |"):
            header = None
        elif header and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            method = report_label(f"scenarios/{scenario}", cells[1])
            rows[(scenario, cells[0], method)] = dict(zip(header[2:], cells[2:], strict=True))
    return rows


def mean(cell: str) -> str:
    """``0.935±0.040`` -> ``0.935``; ``0.5%±0.2`` -> ``0.5``; bold and spaces dropped."""
    return re.split(r"\s*±", cell.replace("*", "").replace("%", "").strip())[0].strip()


def same(written: str, result: str) -> bool:
    """A cell of a page against the result's: the mean, and the SD where the page gives one."""
    written = written.replace("*", "").replace(" ", "").replace("%", "")
    result = result.replace(" ", "").replace("%", "")
    if "±" in written:
        return written == result
    return written == mean(result)


def table(page: str, header_start: str) -> list[list[str]]:
    text = read(page)
    start = text.index(header_start)
    lines = text[start:].split("\n\n")[0].splitlines()
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]


README_METHODS = ("NMM", "NMM, network alone", "MSE", "NMM, kinematics only")
"""The README's benchmark table's columns: the labels of ``deepemg.benchmark.METHODS``."""
README_ROWS = {
    "brachialis r": "BRA r",
    "brachialis r within each trial (shape)": "BRA r trial",
    "brachialis r within each trial": "BRA r trial",
    "brachialis NRMSE": "BRA nrmse",
    "triceps medial head r †": "TRImed r",
    "torque NRMSE vs OpenSim inverse dynamics": "torque nrmse",
    "torque NRMSE": "torque nrmse",
}


def test_readme_benchmark_table_is_the_default_scenarios_report():
    results = scenario_results()
    rows = table("README.md", "| | " + " | ".join(README_METHODS) + " |")
    evaluation, checked = None, 0
    for cells in rows:
        label = cells[0].replace("*", "")
        if label.startswith("within subject"):
            evaluation = "within subject"
            continue
        if label.startswith("leave one subject out"):
            evaluation = "leave one subject out"
            continue
        column = README_ROWS[label]
        for method, cell in zip(README_METHODS, cells[1:], strict=True):
            if not cell:
                continue
            result = results[("default", evaluation, method)][column]
            assert same(cell, result), (evaluation, label, method, cell, result)
            checked += 1
    assert checked == 5 * 4 + 4 * 3


README_SCENARIOS = {
    "default": ("default", "BRA r"),
    "other motions": ("motions", "BRA r"),
    "loads beyond training (r on those trials)": ("heavy_loads", "BRA r beyond"),
    "other strategies, EMG gain errors": ("strategies", "BRA r"),
    "ballistic + strategies + heavy loads": ("ballistic", "BRA r"),
    "compliant Thelen tendons": ("compliant_tendons", "BRA r"),
    "personal curve shapes, compliant tendons": ("personal_curves", "BRA r"),
}


def test_readme_scenario_table_is_the_scenarios_report():
    results = scenario_results()
    rows = table("README.md", "| scenario | within subject | leave one subject out |")
    assert len(rows) == len(SCENARIOS)
    for cells in rows:
        label = cells[0].replace("*", "")
        scenario, column = README_SCENARIOS.get(label, ("off_simulator", "BRA r"))
        if scenario == "off_simulator":
            assert "off_simulator" in label
        for evaluation, cell in zip(
            ("within subject", "leave one subject out"), cells[1:3], strict=True
        ):
            nmm, mse = (c.replace("*", "").strip() for c in cell.split("/"))
            assert nmm == mean(results[(scenario, evaluation, "NMM")][column])
            assert mse == mean(results[(scenario, evaluation, "MSE")][column])


SCENARIOS_MD_METHODS = (
    "NMM",
    "NMM, network alone",
    "NMM, physics_weight=0",
    "NMM, kinematics only",
    "MSE",
)
SCENARIOS_MD_COLUMNS = (
    "BRA r",
    "BRA r trial",
    "BRA r beyond",
    "BRA nrmse",
    "TRImed r",
    "torque nrmse",
)


def test_scenarios_page_table_is_the_scenarios_report():
    results = scenario_results()
    rows = table("docs/scenarios.md", "| scenario | evaluation | method | BRA r |")
    ablations = ("NMM, physics_weight=0", "NMM, kinematics only")
    ablated = sum(method in ablations for *_, method in results)
    assert len(rows) == len(SCENARIOS) * 2 * 3 + ablated
    for scenario, evaluation, method, *cells in rows:
        assert method in SCENARIOS_MD_METHODS, (scenario, evaluation, method)
        result = results[(scenario, evaluation, method)]
        for column, cell in zip(SCENARIOS_MD_COLUMNS, cells, strict=True):
            if cell == "n/a":
                assert column not in result, (scenario, evaluation, method, column)
            else:
                assert same(cell, result[column]), (scenario, evaluation, method, column, cell)


def test_scenarios_page_target_count_is_the_reports():
    text = (RESULTS / "scenarios" / "results.md").read_text(encoding="utf-8")
    verdicts = re.findall(
        r"^\| (?:within subject|leave one subject out) \| .* \| ([^|]+) \|$", text, re.M
    )
    met = sum(v.strip() == "met" for v in verdicts)
    missed = sum(v.strip() == "**missed**" for v in verdicts)
    assert f"{met} met, {missed} missed" in prose("docs/scenarios.md")
    assert f"met in {met} of the {met + missed} applicable checks" in prose("docs/limitations.md")


LIMITATIONS_ROWS = {
    "BRA r": "BRA r",
    "BRA r within each trial": "BRA r trial",
    "BRA NRMSE": "BRA nrmse",
    "torque NRMSE": "torque nrmse",
}


def test_limitations_targets_table_is_the_default_scenarios_report():
    results = scenario_results()
    rows = table("docs/limitations.md", "| | NMM | target | MSE baseline |")
    assert len(rows) == 8
    for label, nmm, _, mse, _ in rows:
        what, _, where = label.rpartition(", ")
        evaluation = "within subject" if where == "within subject" else "leave one subject out"
        column = LIMITATIONS_ROWS[what]
        nmm_cell, mse_cell = (c.split(" (")[0] for c in (nmm, mse))
        default = results[("default", evaluation, "NMM")][column]
        assert same(nmm_cell, default), (label, nmm_cell, default)
        assert same(mse_cell, results[("default", evaluation, "MSE")][column]), (label, mse_cell)


def test_index_quotes_the_default_scenarios_report():
    results = scenario_results()
    text = " ".join(prose("docs/index.md").split())
    within = mean(results[("default", "within subject", "NMM")]["BRA r"])
    across = mean(results[("default", "leave one subject out", "NMM")]["BRA r"])
    mse_within = mean(results[("default", "within subject", "MSE")]["BRA r"])
    mse_across = mean(results[("default", "leave one subject out", "MSE")]["BRA r"])
    assert f"r = {within} within subject" in text
    assert f"surface EMG: {mse_within})" in text
    assert f"r = {across} on subjects" in text
    assert f"own EMG: {mse_across}" in text


def test_uncertainty_coverage_table_is_the_benchmarks():
    output = (RESULTS / "uncertainty.txt").read_text(encoding="utf-8")
    summary = output[output.index("mean ± SD over subjects") :]
    # the first column: the default predict_physics="auto"
    coverage = dict(re.findall(r"^\s+(\w+)(?: \(deep\))?\s+([\d.]+ ± [\d.]+)", summary, re.M))
    page = read("docs/uncertainty.md")
    for muscle in ("BRA", "TRImed", "BIClong", "BICshort", "BRD"):
        assert re.search(rf"\| \**{muscle}[^|]*\| \**{re.escape(coverage[muscle])}\**", page), (
            muscle
        )
    scales = [float(s) for s in re.findall(r"uncertainty_scale_ = ([\d.]+)", output)]
    assert f"between {min(scales):.1f} and {max(scales):.1f}" in page
    bra = [float(v) for v in re.findall(r"^S\d+\s+BRA \(deep\)\s+([\d.]+)", output, re.M)]
    assert f"per subject {min(bra):.2f}-{max(bra):.2f}" in " ".join(page.split())


def test_streaming_table_is_the_benchmarks():
    output = (RESULTS / "streaming.txt").read_text(encoding="utf-8")
    one = output[output.index("1 sample(s) per update") : output.index("5 sample(s)")]
    wall = one[one.index("wall") : one.index("CPU")]
    page = read("docs/streaming.md")
    for label, (mean_ms, p99, top, n) in zip(
        ("all updates", "updates that ran the network", "other updates"),
        re.findall(r"mean ([\d.]+)\s+p99 ([\d.]+)\s+max ([\d.]+) ms\s+\(n=(\d+)\)", wall),
        strict=True,
    ):
        row = next(line for line in page.splitlines() if line.startswith(f"| {label}"))
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        for cell, value in zip(cells, (mean_ms, p99, top), strict=True):
            decimals = len(cell.partition(".")[2])  # as rounded in the page
            assert round(float(value), decimals) == float(cell), (label, cell, value)
        if label != "all updates":
            assert f"({int(n):,})" in row, (label, n)


# ---------------------------------------------------------------- nmm.md and cross_subject.md
@cache
def report_summary(folder: str) -> dict:
    """A report's ``summary.csv``: (evaluation, method) -> column -> value.

    ``method`` is today's label (:func:`report_label`).
    """
    import csv

    with open(RESULTS / folder / "summary.csv", encoding="utf-8", newline="") as file:
        return {
            (row["evaluation"], report_label(folder, row["method"])): row
            for row in csv.DictReader(file)
        }


def report_method(label: str) -> tuple[str, str]:
    """A table row of nmm.md or cross_subject.md -> (evaluation, method label of today).

    "NMM" is the default predictor, "network alone" the same fit with
    ``predict_physics="none"``.
    """
    label = label.replace("*", "")
    evaluation = "within subject" if label.startswith("within subject") else "leave one subject out"
    assert label.startswith(("within subject", "leave one subject out", "new subject")), label
    if "MSE" in label:
        return evaluation, "MSE"
    if "physics_weight=0" in label:
        return evaluation, "NMM, physics_weight=0"
    if "kinematics only" in label:
        return evaluation, "NMM, kinematics only"
    if "network alone" in label:
        return evaluation, "NMM, network alone"
    assert label.endswith(", NMM"), label
    return evaluation, "NMM"


NMM_MD_COLUMNS = ("BRA r", "BRA r trial", "BRA nrmse", "TRImed r", "torque nrmse")


def test_nmm_accuracy_table_is_the_default_scenarios_report():
    """nmm.md's table: its NMM the default predictor, every score and fit time the report's."""
    results = scenario_results()
    summary = report_summary("scenarios/default")
    rows = table(
        "docs/nmm.md", "| protocol | BRA r | BRA r within trial | BRA NRMSE | TRImed r | torque"
    )
    assert len(rows) == 7
    methods = set()
    for label, *cells, fit in rows:
        key = report_method(label)
        methods.add(key)
        for column, cell in zip(NMM_MD_COLUMNS, cells, strict=True):
            assert same(cell, results[("default", *key)][column]), (label, column, cell)
        assert fit == f"{float(summary[key]['fit_s_mean']):.1f} s", (label, fit)
    assert {method for _, method in methods} == {
        "NMM",
        "NMM, network alone",
        "NMM, kinematics only",
        "MSE",
    }


def test_cross_subject_benchmark_table_is_the_default_scenarios_report():
    results = scenario_results()
    rows = table("docs/cross_subject.md", "| protocol | BRA r | BRA NRMSE | torque NRMSE |")
    assert len(rows) == 6
    for label, *cells in rows:
        result = results[("default", *report_method(label))]
        for column, cell in zip(("BRA r", "BRA nrmse", "torque nrmse"), cells, strict=True):
            assert same(cell, result[column]), (label, column, cell)
    text = " ".join(prose("docs/cross_subject.md").split())
    assert "docs/results/scenarios/default/results.md" in text


def report_run(folder: str) -> tuple[str, str]:
    """A report's wall time in minutes and the date it started."""
    text = (RESULTS / folder / "results.md").read_text(encoding="utf-8")
    minutes = re.search(r"^- wall time: ([\d.]+) min", text, re.M).group(1)
    started = re.search(r"^- started \(UTC\): (\d{4}-\d\d-\d\d)", text, re.M).group(1)
    return minutes, started


def test_nmm_quotes_the_reports_runs():
    """The run nmm.md names: the default scenario's report, and the earlier network-alone
    report with its fit times."""
    text = " ".join(prose("docs/nmm.md").split())
    minutes, started = report_run("scenarios/default")
    section = text[text.index("## Accuracy on simulated subjects") :]
    assert f"({minutes} minutes on 2 cores;" in section
    assert f"the report of the run on {started}" in section
    minutes, started = report_run("benchmark")
    summary = report_summary("benchmark")
    within = float(summary[("within subject", "NMM, network alone")]["fit_s_mean"])
    across = float(summary[("leave one subject out", "NMM, network alone")]["fit_s_mean"])
    assert f"{minutes} minutes on 2 cores, {started}" in section
    assert f"fits of {within:.1f} s within subject and {across:.1f} s leave one subject out" in (
        section
    )


def test_nmm_targets_are_the_default_scenarios_report():
    """Each target the default predictor misses is named with its value and bound."""
    text = (RESULTS / "scenarios" / "default" / "results.md").read_text(encoding="utf-8")
    targets = text[text.index("## Targets") :]
    missed = re.findall(
        r"^\| (within subject|leave one subject out) \| ([^|]+) \| ([\d.]+) \| ([\d.]+) \| "
        r"[^|]+ \| \*\*missed\*\* \|$",
        targets,
        re.M,
    )
    assert missed
    page = " ".join(prose("docs/nmm.md").split())
    for _, target, nmm, bound in missed:
        if "NRMSE" in target:
            assert "NRMSE ≤ half of MSE's" in page, target
            assert f"{nmm} against {bound}" in page, (target, nmm, bound)
        else:  # named with its value, e.g. "BRA r within each trial ≥ 0.85 (0.828)"
            assert f"({nmm})" in page, (target, nmm)


def test_nmm_subject_spread_is_the_default_scenarios_report():
    """nmm.md's spread of the brachialis' r over subjects within subject is the report's."""
    import csv

    with open(RESULTS / "scenarios" / "default" / "results.csv", encoding="utf-8") as file:
        rows = [row for row in csv.DictReader(file) if row["evaluation"] == "within subject"]
    page = " ".join(prose("docs/nmm.md").split())
    spreads = []
    for method in ("NMM", "NMM, network alone"):
        r = [
            float(row["BRA_r"])
            for row in rows
            if report_label("scenarios/default", row["method"]) == method
        ]
        spreads.append(f"from {min(r):.2f} to {max(r):.2f}")
    assert f"within subject {spreads[0]}; the network alone's {spreads[1]})" in page


def close(written: str, value: float) -> bool:
    """A number as a page rounds it (to its own decimals)."""
    written = written.replace("*", "").strip()
    decimals = len(written.partition(".")[2])
    return abs(float(written) - value) <= 0.5 * 10**-decimals + 1e-9


@cache
def predict_physics_results() -> dict:
    """``docs/results/predict_physics.txt``: (evaluation, weight, mode) -> its five numbers."""
    rows, section = {}, None
    text = (RESULTS / "predict_physics.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        header = re.match(
            r"(within subject|leave one subject out).*correction_weight=([\d.]+)", line
        )
        if header:
            section = header.group(1), float(header.group(2))
            continue
        row = re.match(
            r"(none|torque|emg)\s+([\d.]+)±([\d.]+)\s+([\d.]+)±([\d.]+)\s+([\d.]+)±([\d.]+)"
            r"\s+([\d.]+)±([\d.]+) %\s+([\d,]+)$",
            line,
        )
        if row and section:
            numbers = [float(v) for v in row.groups()[1:9]]
            rows[(*section, row.group(1))] = [
                *zip(numbers[::2], numbers[1::2], strict=True),
                float(row.group(10).replace(",", "")),
            ]
    return rows


def test_nmm_prediction_time_physics_tables_are_the_benchmarks():
    results = predict_physics_results()
    for evaluation, header in (
        ("within subject", "| within subject (8 lifts train, 4 test) |"),
        ("leave one subject out", "| leave one subject out (after `personalize`) |"),
    ):
        rows = table("docs/nmm.md", header)
        assert len(rows) == 3
        for label, *cells, steps in rows:
            mode = re.match(r'`"(\w+)"`', label).group(1)
            result = results[(evaluation, 0.1, mode)]
            for cell, (value, sd) in zip(cells, result[:4], strict=True):
                written_value, written_sd = (c.replace("%", "") for c in cell.split("±"))
                assert close(written_value, value), (label, cell)
                assert close(written_sd, sd), (label, cell)
            assert float(steps.replace(",", "")) == float(f"{result[4]:.3g}"), (label, steps)


SCENARIO_LABELS = {
    "ballistic + strategies + heavy loads": "ballistic",
    "compliant Thelen tendons": "compliant_tendons",
}
MODES = {
    '`"auto"`': "NMM",  # the default
    '`"none"`': "NMM, network alone",
    '`"torque"`': "NMM, always corrected",
    '`"emg"`': "NMM, EMG-assisted physics",
}


def test_nmm_scenario_table_is_the_scenarios_report():
    results = scenario_results()
    header = '| scenario | `"auto"` | `"none"` | `"torque"` | `"emg"` |'
    modes = [c.strip() for c in header.strip("|").split("|")][1:]
    rows = table("docs/nmm.md", header)
    assert len(rows) == 5
    for label, *cells in rows:
        scenario = SCENARIO_LABELS.get(label, label.split()[0])
        for mode, cell in zip(modes, cells, strict=True):
            within, across = (c.replace("*", "").strip() for c in cell.split("/"))
            for evaluation, written in (
                ("within subject", within),
                ("leave one subject out", across),
            ):
                result = results[(scenario, evaluation, MODES[mode])]["BRA r"]
                assert written == mean(result), (label, mode, evaluation, written, result)


def test_speeds_are_the_benchmarks():
    """Every speed of nmm.md and of NMMRegressor's docstring (247,000, 77,800, ...) is a speed
    of docs/results/speed.txt, predict_physics.txt or correction_speed.txt, to 3 significant
    figures; the prediction-time figures were measured with 2 torch threads, not on one core."""
    from deepemg import NMMRegressor

    measured = set()
    for name in ("speed.txt", "predict_physics.txt", "correction_speed.txt"):
        for number in re.findall(r"\d{1,3}(?:,\d{3})+", (RESULTS / name).read_text("utf-8")):
            measured.add(float(f"{float(number.replace(',', '')):.3g}"))
    docstring = " ".join(inspect.getdoc(NMMRegressor).split())
    for where, text in (
        ("docs/nmm.md", " ".join(prose("docs/nmm.md").split())),
        ("docstring", docstring),
    ):
        written = re.findall(r"\d{1,3}(?:,\d{3})+", text)
        assert written, where
        unsourced = [n for n in written if float(n.replace(",", "")) not in measured]
        assert not unsourced, f"{where}: speeds in no results file: {unsourced}"
        wrong = re.findall(r"[\d,]+ (?:against [\d,]+ )?steps/s,? (?:on|with) one \w+", text)
        assert not wrong, f"{where}: measured with 2 torch threads: {wrong}"
    machine = json_line(RESULTS / "predict_physics.txt")
    assert machine["torch_threads"] == 2
    speed = (RESULTS / "correction_speed.txt").read_text("utf-8")
    assert "speed, 2 torch thread(s)" in speed
    lifts = re.search(r"8 lifts of 5 s\s+[\d,]+ \[[\d,]+\]\s+([\d,]+)", speed).group(1)
    page = " ".join(prose("docs/nmm.md").split())
    milliseconds = 500 / float(lifts.replace(",", "")) * 1000
    assert f"a 5 s trial at 100 Hz takes about {milliseconds:.0f} ms" in page
    assert "247,000 against 77,800 samples/s with 2 torch threads" in docstring


def json_line(path: Path) -> dict:
    """The machine a results file was measured on (its JSON line)."""
    import json

    lines = path.read_text("utf-8").splitlines()
    return json.loads(next(line for line in lines if line.startswith("{")))


def test_the_gpu_run_is_quoted_from_its_results():
    output = (RESULTS / "gpu.txt").read_text(encoding="utf-8")
    fit, correction, _ = re.search(r"cuda / cpu\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", output).groups()
    date = re.search(r"\((\d{4}-\d\d-\d\d)\)", output).group(1)
    assert "H200" in output
    for page in ("docs/nmm.md", "docs/install.md"):
        text = " ".join(prose(page).split())
        assert f"a fit took {fit} and the default prediction {correction} times the CPU's" in text
        assert "`docs/results/gpu.txt`, " + date in text, page
        assert "H200" in text, page
        assert "not tested on a GPU" not in text, page
